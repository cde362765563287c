// `evaluate`: re-evaluate a run's selected model on a split of RetinaMNIST or of a prepared dataset
// (external validation, with notes on what differs from the training data).
import { Option, type Command } from 'commander';
import { readDatasetJson } from '../data/prepared-dataset.js';
import { loadRetinaTensors } from '../data/retinamnist.js';
import { concatSplits, loadPreparedData, releaseTrainingData } from '../data/training-data.js';
import { bootstrapMetrics } from '../eval/index.js';
import { externalValidationNotes } from '../model/external-validation.js';
import { evaluateSplit } from '../model/inference.js';
import { openRun } from '../model/open-run.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { dataDirOption } from './options.js';

const pct = (x: number): string => (100 * x).toFixed(2);

interface EvaluateFlags {
  model: string;
  dataDir?: string;
  data?: string;
  split: 'test' | 'val' | 'all';
  tta?: boolean;
  json?: boolean;
}

export function evaluateCommand(program: Command): void {
  program
    .command('evaluate')
    .description("re-evaluate a run's selected weights on a split")
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(dataDirOption())
    .option('--data <dir>', 'evaluate on a dataset folder made by `retinagrade prepare` (external validation)')
    .addOption(new Option('--split <name>', 'split to report (all: every split)').choices(['test', 'val', 'all']).default('test'))
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option('--json', 'print metrics as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  retinagrade evaluate --model runs/default --split test --json' +
        '\n  retinagrade evaluate --model runs/default --data data/clinic --split all   # external validation',
    )
    .action(async (flags: EvaluateFlags) => {
      const opened = openRun(flags.model);
      const size = opened.modelConfig.inputSize;
      const data = flags.data ? loadPreparedData(flags.data, size) : loadRetinaTensors({ dataDir: flags.dataDir, size });
      const split = flags.split === 'all' ? concatSplits([data.train, data.val, data.test]) : data[flags.split];
      const result = evaluateSplit(opened.model, opened.objective, split, { tta: flags.tta });
      releaseTrainingData(data);
      const notes = flags.data ? externalValidationNotes(opened.run, data.source, readDatasetJson(flags.data), size) : [];
      const ci95 = bootstrapMetrics(split.labels, result.probs, opened.modelConfig.numClasses);
      const report = {
        split: flags.split,
        count: split.count,
        tta: Boolean(flags.tta),
        ...result.metrics,
        ci95,
        data: data.source,
        notes,
        disclaimer: NOT_FOR_CLINICAL_USE,
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const m = result.metrics;
        process.stdout.write(
          `${flags.split}: ACC ${pct(m.acc)}  AUC ${pct(m.auc)}  QWK ${m.qwk.toFixed(3)}  macro-F1 ${m.macro_f1.toFixed(3)}  ` +
            `balanced ACC ${pct(m.balanced_acc)}  ECE ${m.ece.toFixed(3)}  (${split.count} images; ` +
            `95% bootstrap AUC [${pct(ci95.auc.lo)}, ${pct(ci95.auc.hi)}], QWK [${ci95.qwk.lo.toFixed(3)}, ${ci95.qwk.hi.toFixed(3)}])\n` +
            `${notes.map((n) => `note: ${n}\n`).join('')}${NOT_FOR_CLINICAL_USE}\n`,
        );
      }
    });
}
