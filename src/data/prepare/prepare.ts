// `prepare`: a folder of fundus photographs (or a MedMNIST npz) -> a prepared dataset directory.
// Photographs are decoded, disc-cropped and resized several at a time; rows are appended to each
// split's .npy in a fixed order (sorted by source path), each followed by a line in progress.jsonl,
// so a killed run resumes from its last line and loses only the photographs in flight.
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { NOT_FOR_CLINICAL_USE } from '../../notice.js';
import { NOT_FUNDUS_WARNING, preprocessFundus } from '../fundus.js';
import { GRADE_NAMES, NUM_GRADES } from '../grades.js';
import { loadMedMNIST, md5Hex } from '../medmnist.js';
import { NPY_HEADER_BYTES, npyHeader } from '../npy.js';
import {
  DATASET_FILE,
  DATASET_FORMAT,
  type DatasetJson,
  type Preprocessing,
  type SplitCard,
  imagesFile,
  labelsFile,
  md5OfFile,
} from '../prepared-dataset.js';
import { IMAGE_SIZES, SPLITS, fileNameFor, getDatasetFile, type Split } from '../registry.js';
import { type ColumnFlags, type Skip, type SourceEntry, type SourceListing, listSource } from './source.js';
import { assignSplits } from './splits.js';

export const PROGRESS_FILE = 'progress.jsonl';
export const DEFAULT_PREPARE_SIZE = 224;

export interface PrepareOptions {
  /** A folder of photographs, or a MedMNIST RetinaMNIST .npz. */
  source: string;
  out: string;
  /** Side of the stored images; a npz keeps its own. */
  size?: number;
  labels?: string;
  columns?: ColumnFlags;
  val?: number;
  test?: number;
  seed?: number;
  /** Any skipped input is an error. */
  strict?: boolean;
  /** Replace a dataset of another source (or other options) in `out`. */
  overwrite?: boolean;
  /** Photographs decoded at once (default: twice the cores). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PrepareResult {
  card: DatasetJson;
  /** Photographs decoded by this call (fewer than the total after a resume). */
  decoded: number;
  resumedFrom: number;
  alreadyPrepared: boolean;
}

const DISC_PREPROCESSING: Preprocessing = {
  crop: 'retina-disc',
  resize: 'square around the retina disc (black beyond the image), then bilinear to size x size (sharp)',
  decode: `sharp ${sharp.versions.sharp ?? ''} / libvips ${sharp.versions.vips}: EXIF orientation, alpha flattened on black, sRGB`.trim(),
};
const NPZ_PREPROCESSING: Preprocessing = {
  crop: 'medmnist',
  resize: 'as published by MedMNIST (centre crop, then resize)',
  decode: 'none: the npz holds pixels',
};

function checkOptions(options: PrepareOptions): { val: number; test: number; seed: number } {
  const { val = 0.1, test = 0.2, seed = 0 } = options;
  for (const [flag, value] of [
    ['--val', val],
    ['--test', test],
  ] as const) {
    if (!(value >= 0 && value < 1)) throw new UserError(`${flag} ${value}: expected a fraction in [0, 1)`);
  }
  if (val + test >= 1) throw new UserError(`--val ${val} + --test ${test} leave nothing to train on: their sum must be below 1`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) throw new UserError(`--seed ${seed}: expected an integer in 0..2^32-1`);
  if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 8 && options.size <= 1024)) {
    throw new UserError(`--size ${options.size}: expected an integer from 8 to 1024`);
  }
  return { val, test, seed };
}

/** The identity of a preparation: a re-run with the same request resumes, another is refused. */
function requestOf(options: PrepareOptions, fractions: { val: number; test: number; seed: number }, isNpz: boolean) {
  const labels = options.labels ? resolve(options.labels) : undefined;
  let labelsMd5: string | undefined;
  if (labels) {
    try {
      labelsMd5 = md5Hex(readFileSync(labels));
    } catch (error) {
      throw new UserError(`${options.labels}: cannot read the labels file (${(error as Error).message})`);
    }
  }
  return JSON.parse(
    JSON.stringify({
      source: resolve(options.source),
      labels,
      labels_md5: labelsMd5,
      size: isNpz ? undefined : (options.size ?? DEFAULT_PREPARE_SIZE),
      columns: options.columns && Object.keys(options.columns).length > 0 ? options.columns : undefined,
      ...(isNpz ? {} : fractions),
    }),
  ) as Record<string, unknown>;
}

const STATE_FILE = 'prepare-request.json';
/** The files a preparation writes in its folder (all that --overwrite removes). */
const OWN_FILES = [DATASET_FILE, STATE_FILE, PROGRESS_FILE, ...SPLITS.flatMap((s) => [imagesFile(s), labelsFile(s)])];

/** What `out` already holds: nothing of ours, the same request (finished or not), or another. */
function checkOut(out: string, request: Record<string, unknown>, overwrite: boolean): 'fresh' | 'resume' | 'done' {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`--out ${out} exists and is not a folder`);
  const previous = [DATASET_FILE, STATE_FILE].map((f) => join(out, f)).find((f) => existsSync(f));
  if (!previous) {
    const stray = OWN_FILES.filter((f) => existsSync(join(out, f)));
    if (stray.length > 0 && !overwrite) {
      throw new UserError(`${out} holds files prepare would replace (${stray.join(', ')}): choose another --out, or pass --overwrite`);
    }
    for (const file of stray) rmSync(join(out, file));
    return 'fresh';
  }
  let stored: unknown;
  try {
    const json = JSON.parse(readFileSync(previous, 'utf8')) as { request?: unknown };
    stored = basename(previous) === DATASET_FILE ? json.request : json;
  } catch {
    stored = undefined;
  }
  if (JSON.stringify(stored) === JSON.stringify(request)) return basename(previous) === DATASET_FILE ? 'done' : 'resume';
  if (!overwrite) {
    const before = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>;
    const differences = [...new Set([...Object.keys(before), ...Object.keys(request)])]
      .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(request[key]))
      .map((key) => `${key} ${JSON.stringify(before[key]) ?? '(none)'} -> ${JSON.stringify(request[key]) ?? '(none)'}`);
    throw new UserError(
      `${out} holds a dataset prepared from another source or with other options (${differences.join('; ')}): ` +
        'choose another --out, or pass --overwrite to replace it',
    );
  }
  for (const file of OWN_FILES) rmSync(join(out, file), { force: true });
  return 'fresh';
}

type ProgressLine = { id: string; split: Split; row: number } | { id: string; skip: string };

function readProgress(out: string): ProgressLine[] {
  const file = join(out, PROGRESS_FILE);
  if (!existsSync(file)) return [];
  const lines: ProgressLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      if (line) lines.push(JSON.parse(line) as ProgressLine);
    } catch {
      break; // the line being written when the run was killed
    }
  }
  return lines;
}

/** An append-only .npy whose header is rewritten with the row count at the end. */
class NpyAppender {
  private readonly fd: number;
  constructor(
    readonly file: string,
    private readonly rowShape: number[],
    public rows: number,
  ) {
    this.fd = openSync(file, existsSync(file) ? 'r+' : 'w+');
    // Whatever lies past the last recorded row was written by a killed run: drop it.
    ftruncateSync(this.fd, NPY_HEADER_BYTES + rows * this.rowBytes);
    writeSync(this.fd, npyHeader([rows, ...rowShape]), 0, NPY_HEADER_BYTES, 0);
  }
  get rowBytes(): number {
    return this.rowShape.reduce((a, b) => a * b, 1);
  }
  append(row: Uint8Array): number {
    for (let done = 0; done < row.length; ) {
      done += writeSync(this.fd, row, done, row.length - done, NPY_HEADER_BYTES + this.rows * this.rowBytes + done);
    }
    return this.rows++;
  }
  finish(): void {
    writeSync(this.fd, npyHeader([this.rows, ...this.rowShape]), 0, NPY_HEADER_BYTES, 0);
    closeSync(this.fd);
  }
  close(): void {
    closeSync(this.fd);
  }
}

function writeLabels(file: string, grades: readonly number[]): void {
  writeFileAtomic(file, Buffer.concat([npyHeader([grades.length]), Buffer.from(grades)]));
}

type Outcome = { pixels: Uint8Array } | { skip: string };

async function decodeOne(entry: SourceEntry, size: number): Promise<Outcome> {
  try {
    const image = await preprocessFundus(entry.file, size);
    if (image.warnings.includes(NOT_FUNDUS_WARNING))
      return { skip: 'does not look like a fundus photograph (no dark border around a bright disc)' };
    return { pixels: image.pixels };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    const prefix = `${entry.file}: `;
    return { skip: error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message };
  }
}

/**
 * Runs `work` over `items` with at most `concurrency` in flight, handing results to `take` in the
 * items' order: a slow photograph holds back at most `concurrency` finished ones.
 */
async function orderedPool<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
  take: (item: T, result: R) => void,
) {
  const pending = new Map<number, Promise<R>>();
  let launched = 0;
  for (let next = 0; next < items.length; next++) {
    for (; launched < items.length && launched - next < concurrency; launched++) {
      const promise = work(items[launched]!);
      promise.catch(() => {}); // rethrown when awaited below; never an unhandled rejection if `take` stops the run first
      pending.set(launched, promise);
    }
    const result = await pending.get(next)!;
    pending.delete(next);
    take(items[next]!, result);
  }
}

function strictError(skipped: readonly Skip[]): UserError {
  const shown = skipped.slice(0, 20).map((s) => `  ${s.input}: ${s.reason}`);
  const more = skipped.length > shown.length ? [`  ... and ${skipped.length - shown.length} more`] : [];
  return new UserError(`--strict: ${skipped.length} input(s) would be skipped:\n${[...shown, ...more].join('\n')}`);
}

function splitCard(out: string, split: Split, ids: string[], grades: number[]): SplitCard {
  const perGrade = new Array<number>(NUM_GRADES).fill(0);
  for (const g of grades) perGrade[g]!++;
  return {
    count: ids.length,
    per_grade: perGrade,
    images: imagesFile(split),
    labels: labelsFile(split),
    images_md5: md5OfFile(join(out, imagesFile(split))),
    labels_md5: md5OfFile(join(out, labelsFile(split))),
    sources: ids,
  };
}

export async function prepareDataset(options: PrepareOptions): Promise<PrepareResult> {
  const fractions = checkOptions(options);
  const isNpz = options.source.toLowerCase().endsWith('.npz');
  if (isNpz && options.labels)
    throw new UserError('--labels applies to a folder of photographs, not to a MedMNIST .npz (it holds its labels)');
  const request = requestOf(options, fractions, isNpz);
  const state = checkOut(options.out, request, Boolean(options.overwrite));
  if (state === 'done') {
    const card = JSON.parse(readFileSync(join(options.out, DATASET_FILE), 'utf8')) as DatasetJson;
    return { card, decoded: 0, resumedFrom: 0, alreadyPrepared: true };
  }
  const card = isNpz ? prepareFromNpz(options, request) : await prepareFromFolder(options, request, fractions);
  writeFileAtomic(join(options.out, DATASET_FILE), `${JSON.stringify(card.card, null, 1)}\n`);
  rmSync(join(options.out, PROGRESS_FILE), { force: true });
  rmSync(join(options.out, STATE_FILE), { force: true });
  return { ...card, alreadyPrepared: false };
}

async function prepareFromFolder(
  options: PrepareOptions,
  request: Record<string, unknown>,
  fractions: { val: number; test: number; seed: number },
): Promise<Omit<PrepareResult, 'alreadyPrepared'>> {
  const size = options.size ?? DEFAULT_PREPARE_SIZE;
  const listing: SourceListing = listSource(options.source, options.labels, options.columns ?? {});
  if (options.strict && listing.skipped.length > 0) throw strictError(listing.skipped);
  const splitOf = assignSplits(listing.entries, fractions, fractions.seed);
  mkdirSync(options.out, { recursive: true });
  writeFileAtomic(join(options.out, STATE_FILE), JSON.stringify(request));
  const entries = [...listing.entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byId = new Map(entries.map((e) => [e.id, e]));

  const done = readProgress(options.out).filter((line) => byId.has(line.id));
  const finished = new Set(done.map((line) => line.id));
  const rowIds = Object.fromEntries(SPLITS.map((s) => [s, [] as string[]])) as Record<Split, string[]>;
  const skipped: Skip[] = [...listing.skipped];
  for (const line of done) {
    if ('skip' in line) skipped.push({ input: line.id, reason: line.skip });
    else rowIds[line.split][line.row] = line.id;
  }
  const appenders = Object.fromEntries(
    SPLITS.map((s) => [s, new NpyAppender(join(options.out, imagesFile(s)), [size, size, 3], rowIds[s].length)]),
  ) as Record<Split, NpyAppender>;
  const progressFile = join(options.out, PROGRESS_FILE);
  const todo = entries.filter((e) => !finished.has(e.id));
  let decoded = 0;
  try {
    options.onProgress?.(finished.size, entries.length);
    await orderedPool(
      todo,
      options.concurrency ?? 2 * availableParallelism(),
      (entry) => decodeOne(entry, size),
      (entry, outcome) => {
        let line: ProgressLine;
        if ('skip' in outcome) {
          if (options.strict) throw strictError([{ input: entry.id, reason: outcome.skip }]);
          skipped.push({ input: entry.id, reason: outcome.skip });
          line = { id: entry.id, skip: outcome.skip };
        } else {
          const split = splitOf.get(entry.id)!;
          const row = appenders[split].append(outcome.pixels);
          rowIds[split][row] = entry.id;
          line = { id: entry.id, split, row };
        }
        appendFileSync(progressFile, `${JSON.stringify(line)}\n`);
        decoded++;
        options.onProgress?.(finished.size + decoded, entries.length);
      },
    );
  } catch (error) {
    for (const appender of Object.values(appenders)) appender.close();
    throw error;
  }
  for (const appender of Object.values(appenders)) appender.finish();

  const splits = {} as Record<Split, SplitCard>;
  for (const split of SPLITS) {
    const grades = rowIds[split].map((id) => byId.get(id)!.grade);
    writeLabels(join(options.out, labelsFile(split)), grades);
    splits[split] = splitCard(options.out, split, rowIds[split], grades);
  }
  const card: DatasetJson = {
    format: DATASET_FORMAT,
    name: basename(resolve(options.source)),
    request,
    source: { layout: listing.layout, ...(listing.columns ? { columns: { ...listing.columns } } : {}), groups: listing.groups },
    grades: [...GRADE_NAMES],
    size,
    channels: 3,
    preprocessing: DISC_PREPROCESSING,
    splits,
    skipped,
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
  return { card, decoded, resumedFrom: finished.size };
}

/** A RetinaMNIST npz keeps its splits, labels and size; its images are copied as they are. */
function prepareFromNpz(options: PrepareOptions, request: Record<string, unknown>): Omit<PrepareResult, 'alreadyPrepared'> {
  const name = basename(options.source);
  const size = IMAGE_SIZES.find((s) => fileNameFor('retinamnist', s) === name);
  const loaded = loadMedMNIST(options.source, 'retinamnist', { expectedMd5: size ? getDatasetFile('retinamnist', size).md5 : undefined });
  mkdirSync(options.out, { recursive: true });
  if (options.size !== undefined && options.size !== loaded.size) {
    throw new UserError(
      `--size ${options.size}: a MedMNIST npz is stored at its own size (${loaded.size}); train resizes it to the model's input`,
    );
  }
  const splits = {} as Record<Split, SplitCard>;
  for (const split of SPLITS) {
    const { images, labels, count } = loaded[split];
    writeFileAtomic(join(options.out, imagesFile(split)), Buffer.concat([npyHeader([count, loaded.size, loaded.size, 3]), images]));
    writeLabels(join(options.out, labelsFile(split)), Array.from(labels));
    splits[split] = splitCard(
      options.out,
      split,
      Array.from({ length: count }, (_, i) => `${name}#${split}[${i}]`),
      Array.from(labels),
    );
  }
  const card: DatasetJson = {
    format: DATASET_FORMAT,
    name: name.replace(/\.npz$/i, ''),
    request,
    source: { layout: 'medmnist-npz', groups: 'none' },
    grades: [...GRADE_NAMES],
    size: loaded.size,
    channels: 3,
    preprocessing: NPZ_PREPROCESSING,
    splits,
    skipped: [],
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
  return { card, decoded: 0, resumedFrom: 0 };
}
