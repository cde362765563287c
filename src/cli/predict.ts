// `predict`: grade photographs with a trained run. One record per image; a bad file is reported
// and the rest are still graded; the exit code is 1 when any image failed, else 2 when any was
// refused as not a gradable fundus photograph.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { GRADE_NAMES } from '../data/grades.js';
import { openModel } from '../api.js';
import { UNCERTAIN_MESSAGE, type Prediction } from '../model/grade-photo.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { allowUnfinishedOption, precisionOption } from './options.js';
import type { Precision } from '../torch/index.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp']);
/** What --cam writes: left out of folders, so a second run over the same folder skips them. */
const CAM_SUFFIX = '.gradcam.png';

/** One input to grade: a file, or a folder that holds none (`error` says so). */
export interface Input {
  file: string;
  error?: string;
}

/**
 * Files named directly, plus the images inside named folders (sorted, not recursive, without
 * Grad-CAM pictures of an earlier run). A folder without images is an input with an error, so it
 * is reported and the rest are still graded.
 */
export function expandInputs(inputs: string[]): Input[] {
  return inputs.flatMap((input): Input[] => {
    let isDir = false;
    try {
      isDir = statSync(input).isDirectory();
    } catch {
      return [{ file: input }]; // reported as a failed record by predictImage
    }
    if (!isDir) return [{ file: input }];
    const names = readdirSync(input);
    const images = names.filter((name) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && !name.endsWith(CAM_SUFFIX)).sort();
    if (images.length === 0) {
      const onlyCams = names.some((name) => name.endsWith(CAM_SUFFIX)) ? ' (Grad-CAM pictures of earlier runs are skipped)' : '';
      return [{ file: input, error: `no PNG, JPEG, TIFF or WebP images in ${input}${onlyCams}` }];
    }
    return images.map((name) => ({ file: join(input, name) }));
  });
}

/**
 * One Grad-CAM file in `dir` per input: the input's base name with its extension kept (a.jpg and
 * a.png are two pictures); one file however the same input is named; numbered (a.jpg-2) when
 * inputs from different folders share a base name.
 */
export function camFiles(dir: string, files: string[]): string[] {
  const nameOfPath = new Map<string, string>();
  const taken = new Set<string>();
  return files.map((file) => {
    const path = resolve(file);
    let name = nameOfPath.get(path);
    if (name === undefined) {
      const base = basename(path);
      name = `${base}${CAM_SUFFIX}`;
      for (let n = 2; taken.has(name); n++) name = `${base}-${n}${CAM_SUFFIX}`;
      taken.add(name);
      nameOfPath.set(path, name);
    }
    return join(dir, name);
  });
}

function toCsv(records: Prediction[]): string {
  const quote = (s: string): string => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  // The notice is a column, not a comment line, so that every CSV reader keeps it.
  const header = [
    'file',
    'status',
    'grade',
    'grade_name',
    ...GRADE_NAMES.map((_, k) => `p${k}`),
    'p_referable',
    'referable',
    'p_vision_threatening',
    'vision_threatening',
    'uncertainty',
    'warnings',
    'error',
    'cam',
    'notice',
  ].join(',');
  const number = (x: number | undefined): string => (x === undefined ? '' : x.toFixed(6));
  const rows = records.map((r) =>
    [
      quote(r.file),
      r.status ?? 'error',
      r.grade ?? '',
      r.grade_name ?? '',
      ...(r.probabilities ?? new Array(GRADE_NAMES.length).fill(undefined)).map(number),
      number(r.p_referable),
      r.referable ?? '',
      number(r.p_vision_threatening),
      r.vision_threatening ?? '',
      number(r.uncertainty),
      quote(r.warnings.join('; ')),
      quote(r.error ?? r.reason ?? ''),
      quote(r.cam ?? ''),
      quote(NOT_FOR_CLINICAL_USE),
    ].join(','),
  );
  return `${header}\n${rows.join('\n')}\n`;
}

/**
 * `text` with control characters escaped (\n, \t, \x1b...): a file named with a newline or a
 * terminal escape must not forge or hide lines of the report.
 */
export function printable(text: string): string {
  const isControl = (c: string): boolean => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f;
  const chars = [...text];
  if (!chars.some(isControl)) return text;
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };
  const escaped = (c: string): string => named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return chars.map((c) => (isControl(c) || c === '\\' ? escaped(c) : c)).join('');
}

/** "P(referable) 0.620 (referable)": the decision at the run's operating point, when it has one. */
const decisionText = (label: string, p: number, decided: boolean | undefined): string =>
  `P(${label}) ${p.toFixed(3)}${decided === undefined ? '' : ` (${decided ? '' : 'not '}${label})`}`;

function toText(records: Prediction[]): string {
  const lines = records.map((r) =>
    r.error
      ? `${printable(r.file)}: ERROR ${printable(r.error)}`
      : r.status === 'refused'
        ? `${printable(r.file)}: REFUSED ${printable(r.reason!)}`
        : `${printable(r.file)}: grade ${r.grade} (${r.grade_name})${r.status === 'uncertain' ? ` - ${UNCERTAIN_MESSAGE}` : ''}, ` +
          `p=${r.probabilities!.map((p) => p.toFixed(3)).join(' ')}\n  ` +
          `${decisionText('referable', r.p_referable!, r.referable)}, ` +
          `${decisionText('vision-threatening', r.p_vision_threatening!, r.vision_threatening)}, ` +
          `uncertainty ${r.uncertainty!.toFixed(3)}` +
          r.warnings.map((w) => `\n  warning: ${printable(w)}`).join('') +
          (r.cam ? `\n  Grad-CAM: ${printable(r.cam)}` : ''),
  );
  return `${lines.join('\n')}\n${NOT_FOR_CLINICAL_USE}\n`;
}

interface PredictFlags {
  model: string;
  allowUnfinished?: boolean;
  precision?: Precision;
  crop: 'disc' | 'none';
  cam?: string;
  force?: boolean;
  json?: boolean;
  csv?: boolean;
}

/** The exit code when every image was read but some were refused (1 is kept for errors). */
export const REFUSED_EXIT_CODE = 2;

export function predictCommand(program: Command): void {
  program
    .command('predict')
    .description('grade fundus photographs (PNG/JPEG/TIFF/WebP files or folders of them)')
    .argument('<images...>', 'image files or folders')
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(allowUnfinishedOption())
    .addOption(precisionOption('inference'))
    .addOption(
      new Option('--crop <mode>', "'disc': square around the retina disc (photographs); 'none': use the image as is")
        .choices(['disc', 'none'])
        .default('disc'),
    )
    .option(
      '--cam <dir>',
      `also write a Grad-CAM picture per image (image | heat map of the predicted grade) into <dir>, as <input name>${CAM_SUFFIX}`,
    )
    .option('--force', 'grade images that do not look like gradable colour fundus photographs too (their reasons become warnings)')
    .addOption(new Option('--json', 'JSON: {disclaimer, predictions: [one record per image]}').conflicts('csv'))
    .option('--csv', 'CSV, one row per image')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade predict --model runs/default photo.jpg
  retinagrade predict --model runs/default photos/ --csv > grades.csv

Exit code: 0 all graded, 1 some file could not be read, 2 some image was refused as not a
gradable colour fundus photograph (no grade; --force grades it with a warning).

${NOT_FOR_CLINICAL_USE}`,
    )
    .action(async (images: string[], flags: PredictFlags) => {
      const inputs = expandInputs(images);
      const model = await openModel(flags.model, { allowUnfinished: flags.allowUnfinished, precision: flags.precision });
      if (model.info.precisionFallback) process.stderr.write(`warning: ${model.info.precisionFallback}\n`);
      if (flags.cam) mkdirSync(flags.cam, { recursive: true });
      const cams = flags.cam
        ? camFiles(
            flags.cam,
            inputs.map((input) => input.file),
          )
        : [];
      const records: Prediction[] = [];
      for (const [i, { file, error }] of inputs.entries()) {
        if (error) records.push({ file, warnings: [], error });
        else if (!flags.cam) records.push(await model.grade(file, { crop: flags.crop, force: flags.force }));
        else {
          const { camPng: _written, ...record } = await model.gradcam(file, { crop: flags.crop, force: flags.force, file: cams[i] });
          records.push(record);
        }
      }
      model.dispose();
      if (flags.json) process.stdout.write(`${JSON.stringify({ disclaimer: NOT_FOR_CLINICAL_USE, predictions: records }, null, 2)}\n`);
      else if (flags.csv) process.stdout.write(toCsv(records));
      else process.stdout.write(toText(records));
      if (records.some((r) => r.error)) process.exitCode = 1;
      else if (records.some((r) => r.status === 'refused')) process.exitCode = REFUSED_EXIT_CODE;
    });
}
