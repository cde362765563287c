// `predict`: grade photographs with a trained run. One record per image; a bad file is reported
// and the rest are still graded; the exit code is 1 when any image failed.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Option, type Command } from 'commander';
import { GRADE_NAMES } from '../data/grades.js';
import { openModel } from '../api.js';
import type { Prediction } from '../model/grade-photo.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';

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
 * One Grad-CAM file in `dir` per input: the input's path (relative to the working directory when
 * inside it, else absolute) with separators flattened and its extension kept (a.jpg and a.png are
 * two pictures); one file however the same input is named; numbered when two inputs still collide.
 */
export function camFiles(dir: string, files: string[]): string[] {
  const nameOfPath = new Map<string, string>();
  const taken = new Set<string>();
  return files.map((file) => {
    const path = resolve(file);
    let name = nameOfPath.get(path);
    if (name === undefined) {
      const fromHere = relative('.', path);
      const outside = fromHere === '..' || fromHere.startsWith(`..${sep}`) || isAbsolute(fromHere);
      const shown = outside ? path : fromHere;
      const flat = shown.replace(/^[/\\]+/, '').replace(/[/\\:]+/g, '_');
      name = `${flat}${CAM_SUFFIX}`;
      for (let n = 2; taken.has(name); n++) name = `${flat}-${n}${CAM_SUFFIX}`;
      taken.add(name);
      nameOfPath.set(path, name);
    }
    return join(dir, name);
  });
}

function toCsv(records: Prediction[]): string {
  const quote = (s: string): string => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  // The notice is a column, not a comment line, so that every CSV reader keeps it.
  const header = ['file', 'grade', 'grade_name', ...GRADE_NAMES.map((_, k) => `p${k}`), 'warnings', 'error', 'cam', 'notice'].join(',');
  const rows = records.map((r) =>
    [
      quote(r.file),
      r.grade ?? '',
      r.grade_name ?? '',
      ...(r.probabilities ?? new Array(GRADE_NAMES.length).fill('')).map((p) => (typeof p === 'number' ? p.toFixed(6) : p)),
      quote(r.warnings.join('; ')),
      quote(r.error ?? ''),
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

function toText(records: Prediction[]): string {
  const lines = records.map((r) =>
    r.error
      ? `${printable(r.file)}: ERROR ${printable(r.error)}`
      : `${printable(r.file)}: grade ${r.grade} (${r.grade_name}), p=${r.probabilities!.map((p) => p.toFixed(3)).join(' ')}` +
        r.warnings.map((w) => `\n  warning: ${printable(w)}`).join('') +
        (r.cam ? `\n  Grad-CAM: ${printable(r.cam)}` : ''),
  );
  return `${lines.join('\n')}\n${NOT_FOR_CLINICAL_USE}\n`;
}

export function predictCommand(program: Command): void {
  program
    .command('predict')
    .description('grade fundus photographs (PNG/JPEG/TIFF/WebP files or folders of them)')
    .argument('<images...>', 'image files or folders')
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(
      new Option('--crop <mode>', "'disc': square around the retina disc (photographs); 'none': use the image as is")
        .choices(['disc', 'none'])
        .default('disc'),
    )
    .option(
      '--cam <dir>',
      `also write a Grad-CAM picture per image (image | heat map of the predicted grade) into <dir>, as <input path>${CAM_SUFFIX}`,
    )
    .addOption(new Option('--json', 'JSON: {disclaimer, predictions: [one record per image]}').conflicts('csv'))
    .option('--csv', 'CSV, one row per image')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade predict --model runs/default photo.jpg
  retinagrade predict --model runs/default photos/ --csv > grades.csv

${NOT_FOR_CLINICAL_USE}`,
    )
    .action(async (images: string[], flags: { model: string; crop: 'disc' | 'none'; cam?: string; json?: boolean; csv?: boolean }) => {
      const inputs = expandInputs(images);
      const model = await openModel(flags.model);
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
        else if (!flags.cam) records.push(await model.grade(file, { crop: flags.crop }));
        else {
          const { camPng: _written, ...record } = await model.gradcam(file, { crop: flags.crop, file: cams[i] });
          records.push(record);
        }
      }
      model.dispose();
      if (flags.json) process.stdout.write(`${JSON.stringify({ disclaimer: NOT_FOR_CLINICAL_USE, predictions: records }, null, 2)}\n`);
      else if (flags.csv) process.stdout.write(toCsv(records));
      else process.stdout.write(toText(records));
      if (records.some((r) => r.error)) process.exitCode = 1;
    });
}
