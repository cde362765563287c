// `evaluate`: re-evaluate a run's selected model on a split of RetinaMNIST.
import { Option, type Command } from 'commander';
import { ensureRetinaFile, loadRetinaTensors } from '../data/retinamnist.js';
import { evaluateSplit } from '../model/inference.js';
import { openRun } from '../model/open-run.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { addDataOptions, downloadBar, firstUse } from './data-download.js';
import { allowUnfinishedOption } from './options.js';

const pct = (x: number): string => (100 * x).toFixed(2);

export function evaluateCommand(program: Command): void {
  const command = program
    .command('evaluate')
    .description("re-evaluate a run's selected weights on a split")
    .requiredOption('--model <dir>', 'run directory written by `train`');
  addDataOptions(command)
    .addOption(new Option('--split <name>', 'split to report').choices(['test', 'val']).default('test'))
    .addOption(allowUnfinishedOption())
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option('--json', 'print metrics as JSON')
    .addHelpText('after', '\nExample:\n  retinagrade evaluate --model runs/default --split test --json')
    .action(
      async (flags: {
        model: string;
        allowUnfinished?: boolean;
        dataDir?: string;
        download: boolean;
        mirror?: string;
        split: 'test' | 'val';
        tta?: boolean;
        json?: boolean;
      }) => {
        const opened = openRun(flags.model, { allowUnfinished: flags.allowUnfinished });
        const wanted = { dataDir: flags.dataDir, size: opened.modelConfig.inputSize };
        const bar = downloadBar();
        await ensureRetinaFile(wanted, firstUse(flags, bar)).finally(bar.stop);
        const data = loadRetinaTensors(wanted);
        const result = evaluateSplit(opened.model, opened.objective, data[flags.split], { tta: flags.tta });
        const report = {
          split: flags.split,
          tta: Boolean(flags.tta),
          ...result.metrics,
          data: data.source,
          ...(opened.unfinished ? { unfinished: opened.unfinished } : {}),
          disclaimer: NOT_FOR_CLINICAL_USE,
        };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } else {
          const m = result.metrics;
          process.stdout.write(
            `${flags.split}: ACC ${pct(m.acc)}  AUC ${pct(m.auc)}  QWK ${m.qwk.toFixed(3)}  macro-F1 ${m.macro_f1.toFixed(3)}  ` +
              `balanced ACC ${pct(m.balanced_acc)}  ECE ${m.ece.toFixed(3)}\n` +
              `${opened.unfinished ? `warning: ${opened.unfinished}\n` : ''}${NOT_FOR_CLINICAL_USE}\n`,
          );
        }
      },
    );
}
