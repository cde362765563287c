// The fuzzed targets: mutated npz files through the dataset loader, mutated images through
// predict's grading and through the server, mutated run directories through evaluate. Each
// returns its Tally; test/fuzz/fuzz.test.ts asserts on them and scripts/reliability/fuzz.ts
// prints them.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { GRADE_NAMES, NUM_GRADES } from '../../src/data/grades.js';
import { loadMedMNIST } from '../../src/data/medmnist.js';
import { getDataset } from '../../src/data/registry.js';
import { disposeRetinaTensors, loadRetinaTensors } from '../../src/data/retinamnist.js';
import { UserError } from '../../src/errors.js';
import { predictImage, REFUSED_MESSAGE } from '../../src/model/grade-photo.js';
import { evaluateSplit } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { RUN_FILES } from '../../src/model/run-dir.js';
import { createServer } from '../../src/serve/server.js';
import { fakeMedMNIST } from '../data/npz-writer.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { FUZZ_SEED, fuzz, mutate, seededRandom, type Tally } from './harness.js';

export const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const samples = resolve(dataDir, '../samples');

/** Clean: a UserError, the only kind of error a user is shown without a stack. */
const cleanly = (error: unknown): 'clean error' => {
  if (error instanceof UserError) return 'clean error';
  throw error;
};

/**
 * What is wrong with a graded answer, or undefined when it is a well-formed grade: an integer
 * 0..4, named from the grades, as many probabilities as grades, each finite in [0, 1], summing
 * to 1, the grade the most probable one.
 */
export function wrongPrediction(answer: { grade?: unknown; grade_name?: unknown; probabilities?: unknown }): string | undefined {
  const { grade, grade_name: name, probabilities: p } = answer;
  if (!Number.isInteger(grade) || (grade as number) < 0 || (grade as number) >= NUM_GRADES) return `grade ${String(grade)}`;
  if (name !== GRADE_NAMES[grade as number]) return `grade ${grade} named ${String(name)}`;
  if (!Array.isArray(p) || p.length !== NUM_GRADES) return `probabilities ${JSON.stringify(p)}`;
  if (!p.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1)) return `probabilities ${JSON.stringify(p)}`;
  const sum = p.reduce((a: number, b: number) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-3) return `probabilities summing to ${sum}`;
  if (p[grade as number] !== Math.max(...p)) return `grade ${grade} is not the most probable of ${JSON.stringify(p)}`;
  return undefined;
}

/** The photographs mutated: a real fundus JPEG and the same picture as PNG, WebP and TIFF. */
async function seedImages(): Promise<Uint8Array[]> {
  const jpeg = readFileSync(join(samples, 'fundus_a.jpg'));
  const decoded = sharp(jpeg);
  return [jpeg, await decoded.clone().png().toBuffer(), await decoded.clone().webp().toBuffer(), await decoded.clone().tiff().toBuffer()];
}

/**
 * Mutated npz files in RetinaMNIST's layout and split sizes (synthetic images, stored and
 * deflated) through the dataset loader: a load must give the original arrays exactly.
 */
export async function fuzzNpz(seconds?: number): Promise<Tally> {
  const random = seededRandom(FUZZ_SEED);
  // Smooth images with a little noise: compressible like photographs, unlike pure noise.
  const split = (n: number) => ({
    images: Uint8Array.from({ length: n * 28 * 28 * 3 }, (_, i) => ((i % 2352) >> 4) + Math.floor(random() * 8)),
    labels: Uint8Array.from({ length: n }, () => Math.floor(random() * NUM_GRADES)),
  });
  const sizes = getDataset('retinamnist').splitSizes;
  const splits = { train: split(sizes.train), val: split(sizes.val), test: split(sizes.test) };
  const originals = [fakeMedMNIST(28, 3, splits), fakeMedMNIST(28, 3, splits, true)];
  const file = join(mkdtempSync(join(tmpdir(), 'retinagrade-fuzz-npz-')), 'retinamnist.npz');
  return fuzz(
    'npz files -> dataset loader',
    async () => {
      writeFileSync(file, mutate(originals[Math.floor(random() * 2)]!, random));
      try {
        const loaded = loadMedMNIST(file, 'retinamnist');
        for (const name of ['train', 'val', 'test'] as const) {
          const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
          if (!same(loaded[name].images, splits[name].images)) return `${name} images differ from the original's`;
          if (!same(Uint8Array.from(loaded[name].labels), splits[name].labels)) return `${name} labels differ from the original's`;
        }
        return 'correct';
      } catch (error) {
        return cleanly(error);
      }
    },
    seconds,
  );
}

/** Mutated photographs through predict's grading (crop disc or none): a record with an error, a refusal, or a well-formed grade. */
export async function fuzzPredict(seconds?: number): Promise<Tally> {
  const random = seededRandom(FUZZ_SEED + 1);
  const images = await seedImages();
  const opened = openRun(untrainedRun(1));
  try {
    return await fuzz(
      'images -> predict',
      async () => {
        const bytes = mutate(images[Math.floor(random() * images.length)]!, random);
        const record = await predictImage(opened, { name: 'fuzzed', bytes }, { crop: random() < 0.5 ? 'disc' : 'none' });
        if (record.error !== undefined)
          return record.error.startsWith('fuzzed') ? 'clean error' : `an error not naming the input: ${record.error}`;
        // A refusal (not a gradable fundus photograph) is a clean outcome when it says why and gives no grade.
        if (record.status === 'refused') {
          const clean = record.reason?.startsWith(REFUSED_MESSAGE) && record.grade === undefined && record.probabilities === undefined;
          return clean ? 'clean error' : `a refusal with a grade or without its reason: ${JSON.stringify(record)}`;
        }
        return wrongPrediction(record) ?? 'correct';
      },
      seconds,
    );
  } finally {
    opened.model.dispose();
  }
}

const CONTENT_TYPES = ['image/jpeg', 'image/png', 'application/octet-stream', 'image/x-fuzz; q=1', 'text/plain', '', 'image/'];
const QUERIES = ['', '?crop=none', '?cam=1', '?crop=disc&cam=0', '?crop=fuzz', '?cam=2', '?cam=1&cam=0', '?%zz'];

/** Mutated photographs, Content-Types and queries POSTed to the server: 200 with a well-formed grade, or a 4xx/503 with a JSON message. */
export async function fuzzServer(seconds?: number): Promise<Tally> {
  const random = seededRandom(FUZZ_SEED + 2);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const images = await seedImages();
  const app = await createServer(untrainedRun(1), { maxBytes: 1024 * 1024 });
  try {
    const tally = await fuzz(
      'images and requests -> server',
      async () => {
        const contentType = pick(CONTENT_TYPES);
        const response = await app.inject({
          method: 'POST',
          url: `/v1/predict${pick(QUERIES)}`,
          headers: contentType ? { 'content-type': contentType } : {},
          payload: Buffer.from(random() < 0.9 ? mutate(pick(images), random) : new Uint8Array(0)),
        });
        const body = response.json() as Record<string, unknown>;
        if (response.statusCode === 200) return wrongPrediction(body) ?? (body.disclaimer ? 'correct' : 'no disclaimer');
        if (response.statusCode >= 500 && response.statusCode !== 503) throw new Error(`${response.statusCode}: ${response.body}`);
        const wellFormed = body.statusCode === response.statusCode && typeof body.message === 'string' && body.message.length > 0;
        return wellFormed ? 'clean error' : `${response.statusCode} without a JSON message: ${response.body}`;
      },
      seconds,
    );
    // Still serving after all of it.
    const health = await app.inject('/health');
    if (health.statusCode !== 200) tally.failures.push(`/health answered ${health.statusCode} afterwards`);
    return tally;
  } finally {
    await app.close();
  }
}

/**
 * Run directories with a mutated best.safetensors or config.json through evaluate (openRun, then
 * the test split): a clean error, or exactly the metrics of the intact run.
 */
export async function fuzzEvaluate(seconds?: number): Promise<Tally> {
  const random = seededRandom(FUZZ_SEED + 3);
  const intact = untrainedRun(1);
  writeFileSync(
    join(intact, RUN_FILES.config),
    `${JSON.stringify({ size: 28, ensemble: 1, model: { name: 'cnn', width: 8 }, seed: 0 }, null, 2)}\n`,
  );
  const files = { best: readFileSync(join(intact, RUN_FILES.best)), config: readFileSync(join(intact, RUN_FILES.config)) };
  const data = loadRetinaTensors({ dataDir, size: 28 });
  try {
    const evaluate = (dir: string): string => {
      const opened = openRun(dir);
      try {
        return JSON.stringify(evaluateSplit(opened.model, opened.objective, data.test).metrics);
      } finally {
        opened.model.dispose();
      }
    };
    const expected = evaluate(intact);
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-fuzz-run-'));
    return await fuzz(
      'run directories -> evaluate',
      async () => {
        const mutated = random() < 0.8 ? 'best' : 'config';
        for (const name of ['best', 'config'] as const) {
          if (name === mutated) writeFileSync(join(dir, RUN_FILES[name]), mutate(files[name], random));
          else copyFileSync(join(intact, RUN_FILES[name]), join(dir, RUN_FILES[name]));
        }
        try {
          return evaluate(dir) === expected ? 'correct' : `metrics differ from the intact run's after a change to ${mutated}`;
        } catch (error) {
          return cleanly(error);
        }
      },
      seconds,
    );
  } finally {
    disposeRetinaTensors(data);
  }
}
