// `evaluate`: re-evaluate a run's selected model on a split of RetinaMNIST or of a prepared dataset
// (external validation, with notes on what differs from the training data), with the run's
// temperature and operating points (calibration.json), as train computed metrics.json.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { readDatasetJson } from '../data/prepared-dataset.js';
import { ensureRetinaFile, loadRetinaTensors } from '../data/retinamnist.js';
import { concatSplits, loadPreparedData, releaseTrainingData, type SplitSource } from '../data/training-data.js';
import { externalValidationNotes } from '../model/external-validation.js';
import { predictSplit } from '../model/inference.js';
import { openRun } from '../model/open-run.js';
import { calibrated, chooseOperatingPoints } from '../model/run-calibration.js';
import { splitFigures } from '../model/split-figures.js';
import { UserError } from '../errors.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { addDataOptions, downloadBar, firstUse } from './data-download.js';
import { splitFiguresText } from './figures-text.js';
import { allowUnfinishedOption, precisionOption } from './options.js';
import type { Precision } from '../torch/index.js';

const parseSensitivity = (value: string): number => {
  const x = Number(value);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got '${value}'`);
  return x;
};

interface EvaluateFlags {
  model: string;
  allowUnfinished?: boolean;
  precision?: Precision;
  dataDir?: string;
  download: boolean;
  mirror?: string;
  data?: string;
  split: 'test' | 'val' | 'all';
  tta?: boolean;
  json?: boolean;
  minSensitivity?: number;
}

export function evaluateCommand(program: Command): void {
  const command = program
    .command('evaluate')
    .description("re-evaluate a run's selected weights on a split")
    .requiredOption('--model <dir>', 'run directory written by `train`');
  addDataOptions(command)
    .option('--data <dir>', 'evaluate on a dataset folder made by `retinagrade prepare` (external validation)')
    .addOption(new Option('--split <name>', 'split to report (all: every split)').choices(['test', 'val', 'all']).default('test'))
    .addOption(allowUnfinishedOption())
    .addOption(precisionOption('inference'))
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option(
      '--min-sensitivity <x>',
      "re-choose the referable operating points on validation: the highest specificity at sensitivity >= x (default: the run's)",
      parseSensitivity,
    )
    .option('--json', 'print the figures as JSON (intervals included)')
    .addHelpText(
      'after',
      '\nExamples:\n  retinagrade evaluate --model runs/default --split test --json' +
        '\n  retinagrade evaluate --model runs/default --data data/clinic --split all   # external validation',
    )
    .action(async (flags: EvaluateFlags) => {
      const opened = openRun(flags.model, { allowUnfinished: flags.allowUnfinished, precision: flags.precision });
      if (opened.precisionFallback) process.stderr.write(`warning: ${opened.precisionFallback}\n`);
      let calibration = opened.calibration;
      if (flags.minSensitivity !== undefined && !calibration) {
        throw new UserError(`--min-sensitivity needs the run's temperature, and ${opened.run.file('calibration')} is missing`);
      }
      const size = opened.modelConfig.inputSize;
      const wanted = { dataDir: flags.dataDir, size };
      if (!flags.data) {
        // Only RetinaMNIST is fetched on first use; a prepared dataset is read from its folder.
        const bar = downloadBar();
        await ensureRetinaFile(wanted, firstUse(flags, bar)).finally(bar.stop);
      }
      const data = flags.data ? loadPreparedData(flags.data, size) : loadRetinaTensors(wanted);
      const split = flags.split === 'all' ? concatSplits([data.train, data.val, data.test]) : data[flags.split];
      let probabilities: Float64Array;
      try {
        const probabilitiesOf = (source: SplitSource) =>
          calibrated(predictSplit(opened.model, opened.objective, source, { tta: flags.tta }), calibration);
        if (flags.minSensitivity !== undefined && calibration) {
          calibration = { ...calibration, ...chooseOperatingPoints(data.val.labels, probabilitiesOf(data.val), flags.minSensitivity) };
        }
        probabilities = probabilitiesOf(split);
      } finally {
        releaseTrainingData(data);
      }
      const figures = splitFigures(split.labels, probabilities, calibration);
      const notes = flags.data ? externalValidationNotes(opened.run, data.source, readDatasetJson(flags.data), size) : [];
      const unfinished = opened.unfinished ? { unfinished: opened.unfinished } : {};
      if (flags.json) {
        const report = {
          split: flags.split,
          count: split.count,
          tta: Boolean(flags.tta),
          temperature: calibration?.temperature ?? null,
          ...figures,
        };
        const json = { ...report, data: data.source, notes, ...unfinished, disclaimer: NOT_FOR_CLINICAL_USE };
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        const temperature = calibration ? `temperature ${calibration.temperature.toFixed(3)}` : 'no calibration.json: temperature 1';
        process.stdout.write(
          `${splitFiguresText(`${flags.split} (${split.count})`, figures)}\n` +
            `Brackets: bootstrap 95% intervals. Probabilities at the run's ${temperature}.\n` +
            `${notes.map((n) => `note: ${n}\n`).join('')}` +
            `${opened.unfinished ? `warning: ${opened.unfinished}\n` : ''}${NOT_FOR_CLINICAL_USE}\n`,
        );
      }
    });
}
