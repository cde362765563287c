// train, evaluate, predict and serve: the commands that make and use models.
import { Option, type Command } from 'commander';
import { train } from '../train/trainer.js';
import { openRun } from '../train/saved-run.js';
import { prepareData } from '../train/dataset.js';
import { NOT_FOR_CLINICAL_USE, type RunMetrics } from '../train/outputs.js';
import { evaluateSplit } from '../train/inference.js';
import { RECIPE_NAMES } from '../train/recipes.js';
import { dataDirOption, parseInteger, parseNumber } from './options.js';
import { createProgress } from './progress.js';
import { resolveRunConfig, type TrainFlags } from './train-config.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';

const say = (line: string): void => void process.stderr.write(`${line}\n`);
const pct = (x: number): string => (100 * x).toFixed(2);

function summary(metrics: RunMetrics): string {
  const t = metrics.test;
  const ci = t.ci95;
  return [
    Array.isArray(metrics.best_epoch)
      ? `ensemble of ${metrics.best_epoch.length}, best epochs ${metrics.best_epoch.join(', ')}, ${metrics.seconds.toFixed(0)} s`
      : `best epoch ${metrics.best_epoch}, ${metrics.seconds.toFixed(0)} s`,
    `val   ACC ${pct(metrics.val.acc)}  AUC ${pct(metrics.val.auc)}  QWK ${metrics.val.qwk.toFixed(3)}`,
    `test  ACC ${pct(t.acc)} [${pct(ci.acc.lo)}, ${pct(ci.acc.hi)}]  AUC ${pct(t.auc)} [${pct(ci.auc.lo)}, ${pct(ci.auc.hi)}]  ` +
      `QWK ${t.qwk.toFixed(3)} [${ci.qwk.lo.toFixed(3)}, ${ci.qwk.hi.toFixed(3)}]  macro-F1 ${t.macro_f1.toFixed(3)}  ECE ${t.ece.toFixed(3)}`,
    metrics.data.upsampled_from ? `(inputs upsampled from ${metrics.data.upsampled_from}x${metrics.data.upsampled_from})` : '',
    NOT_FOR_CLINICAL_USE,
  ]
    .filter(Boolean)
    .join('\n');
}

export function registerModelCommands(program: Command): void {
  program
    .command('train')
    .description('train a model on RetinaMNIST, select it on validation, evaluate it on test')
    .requiredOption('--out <dir>', 'run directory to create (config, log, weights, metrics, predictions)')
    .addOption(dataDirOption())
    .option('--config <file>', 'run config JSON (see src/train/config.ts); flags override it')
    .addOption(new Option('--recipe <name>', 'preset the flags are layered on').choices(RECIPE_NAMES))
    .addOption(new Option('--model <name>', 'architecture').choices(['cnn', 'resnet18', 'resnet50']))
    .option('--width <n>', 'channels of the first stage', parseInteger)
    .option('--dropout <p>', 'dropout before the classifier', parseNumber)
    .addOption(new Option('--size <px>', 'model input size (28, 64, 128, 224)').argParser(parseInteger))
    .option('--epochs <n>', 'training epochs', parseInteger)
    .option('--batch-size <n>', 'images per step (at least 2)', parseInteger)
    .addOption(new Option('--optimizer <name>').choices(['adamw', 'adam', 'sgd']))
    .option('--lr <rate>', 'peak learning rate', parseNumber)
    .option('--weight-decay <wd>', 'weight decay', parseNumber)
    .addOption(new Option('--schedule <name>').choices(['cosine', 'multistep', 'onecycle', 'constant']))
    .addOption(new Option('--loss <kind>').choices(['ce', 'focal', 'ordinal']))
    .addOption(new Option('--class-weights <mode>').choices(['none', 'inverse', 'sqrt-inverse', 'effective-number']))
    .option('--label-smoothing <eps>', 'cross-entropy label smoothing', parseNumber)
    .addOption(new Option('--sampler <kind>').choices(['shuffle', 'weighted']))
    .option('--no-augment', 'train without augmentation')
    .option('--ema <decay>', 'evaluate an exponential moving average of the weights (e.g. 0.99)', parseNumber)
    .option('--ensemble <k>', 'train k models from different seeds and average their probabilities', parseInteger)
    .addOption(new Option('--select-on <metric>', 'validation metric that picks the best epoch').choices(['auc', 'acc', 'qwk']))
    .option('--patience <epochs>', 'stop after this many epochs without improvement (0: never)', parseInteger)
    .option('--seed <n>', 'random seed (same seed and config: same result)', parseInteger)
    .option('--threads <n>', 'libtorch intra-op threads (default: all cores)', parseInteger)
    .addOption(new Option('--resume', 'continue an interrupted run in --out from its last checkpoint').conflicts('overwrite'))
    .option('--overwrite', 'replace the run (or a run\'s files) already in --out')
    .option('--json', 'print the final metrics as JSON on stdout')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade train --out runs/default                 # the default recipe (RESULTS.md)
  retinagrade train --recipe datasheet --out runs/ds   # the datasheet's recipe, exactly
  retinagrade train --model cnn --epochs 2 --out runs/quick --data-dir ../shared/data
  retinagrade train --out runs/default --resume        # after an interruption`,
    )
    .action(async (flags: TrainFlags & { out: string; dataDir?: string; resume?: boolean; overwrite?: boolean; json?: boolean }) => {
      const config = resolveRunConfig(flags);
      const { metrics } = await train({
        config,
        outDir: flags.out,
        dataDir: flags.dataDir,
        resume: flags.resume,
        overwrite: flags.overwrite,
        progress: createProgress(),
        say,
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
      else process.stdout.write(`${summary(metrics)}\n`);
    });

  program
    .command('evaluate')
    .description("re-evaluate a run's selected weights on a split")
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(dataDirOption())
    .addOption(new Option('--split <name>', 'split to report').choices(['test', 'val']).default('test'))
    .option('--tta', 'average each prediction with that of the mirrored image')
    .option('--json', 'print metrics as JSON')
    .addHelpText('after', '\nExample:\n  retinagrade evaluate --model runs/default --split test --json')
    .action(async (flags: { model: string; dataDir?: string; split: 'test' | 'val'; tta?: boolean; json?: boolean }) => {
      const saved = openRun(flags.model);
      const data = prepareData({ dataDir: flags.dataDir, size: saved.config.size });
      const result = evaluateSplit(saved.model, saved.objective, data[flags.split], { tta: flags.tta });
      const report = { split: flags.split, tta: Boolean(flags.tta), ...result.metrics, data: data.source, disclaimer: NOT_FOR_CLINICAL_USE };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const m = result.metrics;
        process.stdout.write(
          `${flags.split}: ACC ${pct(m.acc)}  AUC ${pct(m.auc)}  QWK ${m.qwk.toFixed(3)}  macro-F1 ${m.macro_f1.toFixed(3)}  ` +
            `balanced ACC ${pct(m.balanced_acc)}  ECE ${m.ece.toFixed(3)}\n${NOT_FOR_CLINICAL_USE}\n`,
        );
      }
    });

  predictCommand(program);
  serveCommand(program);
}
