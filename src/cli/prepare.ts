// `prepare`: a folder of fundus photographs (or a MedMNIST npz) -> a prepared dataset folder.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { DEFAULT_PREPARE_SIZE, prepareDataset } from '../data/prepare/prepare.js';
import { type DatasetJson, MIN_PREPARED_SIZE } from '../data/prepared-dataset.js';
import { SPLITS } from '../data/registry.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { integerAtLeast, parseInteger, parseNumber } from './options.js';

interface PrepareFlags {
  out: string;
  size?: number;
  labels?: string;
  imageColumn?: string;
  gradeColumn?: string;
  groupColumn?: string;
  splitColumn?: string;
  val: number;
  test: number;
  seed: number;
  strict?: boolean;
  overwrite?: boolean;
  concurrency?: number;
  json?: boolean;
}

function progressBar(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY || process.env.CI) return undefined;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'prepare [{bar}] {value}/{total} photographs | {eta_formatted} left', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return (done, total) => {
    if (!started) bar.start(total, done);
    started = true;
    bar.update(done);
    if (done === total) bar.stop();
  };
}

export function prepareCommand(program: Command): void {
  program
    .command('prepare')
    .description('turn a folder of fundus photographs with grades (or a MedMNIST npz) into a dataset folder that train and evaluate read')
    .argument('<source>', 'folder of photographs (with --labels, or one subfolder per grade), or a retinamnist*.npz file')
    .requiredOption('--out <dir>', 'dataset folder to write (dataset.json + .npy arrays); re-running resumes')
    .option(
      '--size <px>',
      `side of the stored images (default: ${DEFAULT_PREPARE_SIZE}; an npz keeps its own)`,
      integerAtLeast(MIN_PREPARED_SIZE),
    )
    .option(
      '--labels <file>',
      'labels file, CSV or Excel (.xlsx/.xls, first sheet), naming each image (file name with or without extension, or path) and its grade',
    )
    .option('--image-column <name>', 'column of the image names (default: detected, e.g. id_code, image, Image name)')
    .option('--grade-column <name>', 'column of the grades (default: detected, e.g. diagnosis, level, Retinopathy grade)')
    .option('--group-column <name>', 'column of the patient ids: no patient in two splits (default: detected, e.g. patient_id)')
    .option('--split-column <name>', 'column naming each image train/val/test (default: detected, e.g. split)')
    .option('--val <fraction>', 'validation fraction when the labels give no split', parseNumber, 0.1)
    .option('--test <fraction>', 'test fraction when the labels give no split', parseNumber, 0.2)
    .option('--seed <n>', 'seed of the split draw', parseInteger, 0)
    .option('--strict', 'stop with an error at the first input that would be skipped')
    .option('--overwrite', 'replace a dataset prepared from another source or with other options in --out')
    .option('--concurrency <n>', 'photographs decoded at once (default: twice the cores)', integerAtLeast(1))
    .option('--json', 'print dataset.json on stdout')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade prepare aptos/train_images --labels aptos/train.csv --out data/aptos-224    # APTOS 2019
  retinagrade prepare eyepacs/train --labels eyepacs/trainLabels.csv --out data/eyepacs   # patients from 10_left/10_right
  retinagrade prepare idrid/train --labels idrid/train_labels.xlsx --out data/idrid        # an Excel labels file
  retinagrade prepare clinic/ --out data/clinic --size 128                                # clinic/0/*.jpg ... clinic/4/*.jpg
  retinagrade prepare ~/.medmnist/retinamnist_224.npz --out data/retinamnist-224`,
    )
    .action(async (source: string, flags: PrepareFlags) => {
      const result = await prepareDataset({
        source,
        out: flags.out,
        size: flags.size,
        labels: flags.labels,
        columns: JSON.parse(
          JSON.stringify({ image: flags.imageColumn, grade: flags.gradeColumn, group: flags.groupColumn, split: flags.splitColumn }),
        ),
        val: flags.val,
        test: flags.test,
        seed: flags.seed,
        strict: flags.strict,
        overwrite: flags.overwrite,
        concurrency: flags.concurrency,
        onProgress: flags.json ? undefined : progressBar(),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result.card, null, 2)}\n`);
        return;
      }
      const resumed = result.resumedFrom ? ` (resumed after ${result.resumedFrom})` : '';
      const status = result.alreadyPrepared
        ? `${flags.out} is already prepared from this source: nothing to do`
        : `prepared ${flags.out}: ${result.decoded} photographs decoded${resumed}`;
      process.stdout.write(`${status}\n${datasetCardText(result.card)}\n`);
    });
}

/** A prepared dataset's card for people: splits and grades, size and crop, skips by kind of reason. */
export function datasetCardText(card: DatasetJson): string {
  const lines = [
    `${card.name}: ${card.size}x${card.size}x3, ${card.preprocessing.crop} crop, from ${card.source.layout}; ` +
      `patients: ${card.source.groups}`,
    ...SPLITS.map((s) => {
      const perGrade = card.splits[s].per_grade.map((n, g) => `${g}:${n}`).join(' ');
      return `${s.padEnd(5)} ${String(card.splits[s].count).padStart(6)} images; per grade ${perGrade}`;
    }),
  ];
  if (card.skipped.length > 0) {
    lines.push(`skipped ${card.skipped.length} input(s) (each listed in dataset.json):`);
    const reasons = new Map<string, number>();
    for (const s of card.skipped) {
      const kind = s.reason.replace(/'[^']*'/g, "'...'"); // one line per kind of reason, not per file
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
    for (const [reason, count] of reasons) lines.push(`  ${String(count).padStart(5)} x ${reason}`);
  }
  lines.push(NOT_FOR_CLINICAL_USE);
  return lines.join('\n');
}
