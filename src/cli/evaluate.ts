// `evaluate`: re-evaluate a run's selected model on a split of RetinaMNIST, with the run's
// temperature and operating points (calibration.json), as train computed metrics.json.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ensureRetinaFile, loadRetinaTensors } from '../data/retinamnist.js';
import { predictProbabilities } from '../model/inference.js';
import { openRun } from '../model/open-run.js';
import { calibrated, chooseOperatingPoints } from '../model/run-calibration.js';
import { splitFigures } from '../model/split-figures.js';
import { UserError } from '../errors.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { addDataOptions, downloadBar, firstUse } from './data-download.js';
import { splitFiguresText } from './figures-text.js';
import { allowUnfinishedOption } from './options.js';

const parseSensitivity = (value: string): number => {
  const x = Number(value);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got '${value}'`);
  return x;
};

interface EvaluateFlags {
  model: string;
  allowUnfinished?: boolean;
  dataDir?: string;
  download: boolean;
  mirror?: string;
  split: 'test' | 'val';
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
    .addOption(new Option('--split <name>', 'split to report').choices(['test', 'val']).default('test'))
    .addOption(allowUnfinishedOption())
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option(
      '--min-sensitivity <x>',
      "re-choose the referable operating points on validation: the highest specificity at sensitivity >= x (default: the run's)",
      parseSensitivity,
    )
    .option('--json', 'print the figures as JSON (intervals included)')
    .addHelpText('after', '\nExample:\n  retinagrade evaluate --model runs/default --split test --json')
    .action(async (flags: EvaluateFlags) => {
      const opened = openRun(flags.model, { allowUnfinished: flags.allowUnfinished });
      let calibration = opened.calibration;
      if (flags.minSensitivity !== undefined && !calibration) {
        throw new UserError(`--min-sensitivity needs the run's temperature, and ${opened.run.file('calibration')} is missing`);
      }
      const wanted = { dataDir: flags.dataDir, size: opened.modelConfig.inputSize };
      const bar = downloadBar();
      await ensureRetinaFile(wanted, firstUse(flags, bar)).finally(bar.stop);
      const data = loadRetinaTensors(wanted);
      const probabilitiesOf = (split: 'val' | 'test') =>
        calibrated(predictProbabilities(opened.model, opened.objective, data[split].x, { tta: flags.tta }), calibration);
      if (flags.minSensitivity !== undefined && calibration) {
        calibration = { ...calibration, ...chooseOperatingPoints(data.val.labels, probabilitiesOf('val'), flags.minSensitivity) };
      }
      const figures = splitFigures(data[flags.split].labels, probabilitiesOf(flags.split), calibration);
      const unfinished = opened.unfinished ? { unfinished: opened.unfinished } : {};
      if (flags.json) {
        const report = { split: flags.split, tta: Boolean(flags.tta), temperature: calibration?.temperature ?? null, ...figures };
        const json = { ...report, data: data.source, ...unfinished, disclaimer: NOT_FOR_CLINICAL_USE };
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        const temperature = calibration ? `temperature ${calibration.temperature.toFixed(3)}` : 'no calibration.json: temperature 1';
        process.stdout.write(
          `${splitFiguresText(`${flags.split} (${data[flags.split].count})`, figures)}\n` +
            `Brackets: bootstrap 95% intervals. Probabilities at the run's ${temperature}.\n` +
            `${opened.unfinished ? `warning: ${opened.unfinished}\n` : ''}${NOT_FOR_CLINICAL_USE}\n`,
        );
      }
    });
}
