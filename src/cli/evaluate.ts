// `evaluate`: re-evaluate a run's selected model on a split of RetinaMNIST, with the run's
// temperature and operating points (calibration.json), as train computed metrics.json.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadRetinaTensors } from '../data/retinamnist.js';
import { predictProbabilities } from '../model/inference.js';
import { openRun } from '../model/open-run.js';
import { calibrated, chooseOperatingPoints } from '../model/run-calibration.js';
import { splitFigures } from '../model/split-figures.js';
import { UserError } from '../errors.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { splitFiguresText } from './figures-text.js';
import { dataDirOption } from './options.js';

const parseSensitivity = (value: string): number => {
  const x = Number(value);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got '${value}'`);
  return x;
};

interface EvaluateFlags {
  model: string;
  dataDir?: string;
  split: 'test' | 'val';
  tta?: boolean;
  json?: boolean;
  minSensitivity?: number;
}

export function evaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description("re-evaluate a run's selected weights on a split")
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(dataDirOption())
    .addOption(new Option('--split <name>', 'split to report').choices(['test', 'val']).default('test'))
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option(
      '--min-sensitivity <x>',
      "re-choose the referable operating points on validation: the highest specificity at sensitivity >= x (default: the run's)",
      parseSensitivity,
    )
    .option('--json', 'print the figures as JSON (intervals included)')
    .addHelpText('after', '\nExample:\n  retinagrade evaluate --model runs/default --split test --json')
    .action(async (flags: EvaluateFlags) => {
      const opened = openRun(flags.model);
      let calibration = opened.calibration;
      if (flags.minSensitivity !== undefined && !calibration) {
        throw new UserError(`--min-sensitivity needs the run's temperature, and ${opened.run.file('calibration')} is missing`);
      }
      const data = loadRetinaTensors({ dataDir: flags.dataDir, size: opened.modelConfig.inputSize });
      const probabilitiesOf = (split: 'val' | 'test') =>
        calibrated(predictProbabilities(opened.model, opened.objective, data[split].x, { tta: flags.tta }), calibration);
      if (flags.minSensitivity !== undefined && calibration) {
        calibration = { ...calibration, ...chooseOperatingPoints(data.val.labels, probabilitiesOf('val'), flags.minSensitivity) };
      }
      const figures = splitFigures(data[flags.split].labels, probabilitiesOf(flags.split), calibration);
      if (flags.json) {
        const report = { split: flags.split, tta: Boolean(flags.tta), temperature: calibration?.temperature ?? null, ...figures };
        process.stdout.write(`${JSON.stringify({ ...report, data: data.source, disclaimer: NOT_FOR_CLINICAL_USE }, null, 2)}\n`);
      } else {
        const temperature = calibration ? `temperature ${calibration.temperature.toFixed(3)}` : 'no calibration.json: temperature 1';
        process.stdout.write(
          `${splitFiguresText(`${flags.split} (${data[flags.split].count})`, figures)}\n` +
            `Brackets: bootstrap 95% intervals. Probabilities at the run's ${temperature}.\n${NOT_FOR_CLINICAL_USE}\n`,
        );
      }
    });
}
