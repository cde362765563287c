// train and montage: the commands about training (the only part of the CLI that imports src/train).
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { GRADE_NAMES } from '../../data/grades.js';
import { writeMontage } from '../../data/montage.js';
import { MIN_PREPARED_SIZE, PREPARED_TRAINING_SIZE } from '../../data/prepared-dataset.js';
import { IMAGE_SIZES } from '../../data/registry.js';
import { ensureRetinaFile, loadRetinaTensors } from '../../data/retinamnist.js';
import { takeBatch } from '../../data/training-data.js';
import { UserError } from '../../errors.js';
import type { RunMetrics } from '../../model/run-metrics.js';
import { NOT_FOR_CLINICAL_USE } from '../../notice.js';
import * as torch from '../../torch/index.js';
import { RunConfigSchema, savedConfigOf } from '../../train/config.js';
import { RECIPE_NAMES } from '../../train/recipes.js';
import { discardUnstarted, train } from '../../train/run.js';
import type { Progress } from '../../train/loop.js';
import { RunDir } from '../../model/run-dir.js';
import { runStatus } from '../../model/run-status.js';
import { addDataOptions, downloadBar, firstUse } from '../data-download.js';
import { headlineText, splitFiguresText } from '../figures-text.js';
import { integerAtLeast, parseNumber, precisionOption } from '../options.js';
import { distTimeoutOption, launchTrain, nprocOption, type LaunchFlags } from './launch.js';
import { createProgress } from './progress.js';
import { CONFIG_FLAGS, resolveRunConfig, resumedRunConfig, type TrainFlags } from './config-flags.js';

const say = (line: string): void => void process.stderr.write(`${line}\n`);

/** `count` training images taking the grades in turn, each grade's images in file order. */
function rowsByGrade(labels: Uint8Array, count: number): number[] {
  const byGrade = GRADE_NAMES.map((_, g) => Array.from(labels.keys()).filter((i) => labels[i] === g));
  const rows: number[] = [];
  for (let k = 0; rows.length < count; k++) {
    for (const indices of byGrade) if (k < indices.length && rows.length < count) rows.push(indices[k]!);
  }
  return rows;
}

function calibrationText({ calibration, uncertainty }: RunMetrics): string {
  const f = (x: number) => x.toFixed(3);
  return (
    `temperature ${f(calibration.temperature)} (fitted on val): ` +
    `test ECE ${f(calibration.test.ece_before)} -> ${f(calibration.test.ece_after)}; ` +
    `uncertain (refer for human grading) above ${f(uncertainty.threshold)}: ` +
    `test coverage ${f(uncertainty.test.coverage)}, ACC of the rest ${f(uncertainty.test.accuracy)}`
  );
}

function summary(metrics: RunMetrics): string {
  return [
    Array.isArray(metrics.best_epoch)
      ? `ensemble of ${metrics.best_epoch.length}, best epochs ${metrics.best_epoch.join(', ')}, ${metrics.seconds.toFixed(0)} s`
      : `best epoch ${metrics.best_epoch}, ${metrics.seconds.toFixed(0)} s`,
    headlineText('val ', metrics.val),
    metrics.val.note ? `  note: ${metrics.val.note}` : '',
    splitFiguresText('test', metrics.test),
    calibrationText(metrics),
    metrics.data.upsampled_from ? `(inputs upsampled from ${metrics.data.upsampled_from}x${metrics.data.upsampled_from})` : '',
    NOT_FOR_CLINICAL_USE,
  ]
    .filter(Boolean)
    .join('\n');
}

/** A zod field with a default, as commander choices with that default shown in --help. */
interface EnumWithDefault {
  unwrap(): { options: readonly string[] };
  def: { defaultValue: unknown };
}
const choiceOption = (flags: string, description: string, field: EnumWithDefault): Option =>
  new Option(flags, `${description} (default: ${String(field.def.defaultValue)})`).choices(field.unwrap().options);

const fields = RunConfigSchema.shape;
const defaultOf = (field: { def: { defaultValue: unknown } }): string => ` (default: ${JSON.stringify(field.def.defaultValue)})`;

/** `train` flags that are not part of the run configuration. */
interface RunFlags {
  out?: string;
  dataDir?: string;
  download: boolean;
  mirror?: string;
  resume?: boolean;
  overwrite?: boolean;
  json?: boolean;
  printConfig?: boolean;
  model?: string;
}

/** The run-config flags the user typed (not commander's defaults, such as --no-augment's true). */
function typedConfigFlags(command: Command): TrainFlags {
  const typed: TrainFlags = {};
  const values = command.opts();
  for (const name of ['config', ...CONFIG_FLAGS.map((e) => e.option)] as const) {
    if (command.getOptionValueSource(name) === 'cli') (typed as Record<string, unknown>)[name] = values[name];
  }
  return typed;
}

const shellWord = (word: string): string => (/^[\w./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);

/** The command that continues the run in `outDir`. */
export const resumeCommand = (outDir: string, dataDir?: string): string =>
  `retinagrade train --out ${shellWord(outDir)} --resume${dataDir ? ` --data-dir ${shellWord(dataDir)}` : ''}`;

/**
 * On SIGINT/SIGTERM: say where the run stands and how to continue it, then exit (128 + signal).
 * Exiting between two steps is safe: every file a run writes is replaced atomically.
 */
function stopOnSignal(outDir: string, dataDir: string | undefined, existedBefore: boolean, progress: Progress | undefined): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    progress?.stop();
    const status = runStatus(new RunDir(outDir));
    if (discardUnstarted(outDir, existedBefore)) say(`retinagrade: stopped by ${signal} before the first epoch ended; removed ${outDir}`);
    else if (status)
      say(
        `retinagrade: stopped by ${signal}; ${outDir} keeps the run (${status.progress}). ` +
          `Continue it with:\n  ${resumeCommand(outDir, dataDir)}`,
      );
    else say(`retinagrade: stopped by ${signal} before the run began`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export function registerTrainCommands(program: Command): void {
  const model = fields.model.unwrap().shape;
  const loss = fields.loss.unwrap().shape;
  const optimizer = fields.optimizer.unwrap().shape;
  const trainCommand = program
    .command('train')
    .description(`train a DR grader (${GRADE_NAMES.length} grades) on RetinaMNIST or --data, select it on validation, evaluate it on test`)
    // Checked in the action, so that a mistyped flag is reported before a missing --out.
    .option('--out <dir>', 'run directory to create (config, log, weights, metrics, predictions); required');
  addDataOptions(trainCommand)
    .option('--data <dir>', 'train on a dataset folder made by `retinagrade prepare` instead of RetinaMNIST')
    .option('--init <run>', "start from a finished single-model run's selected weights (transfer learning)")
    .option('--config <file>', "run config JSON (a run's own config.json works); flags override it")
    .addOption(new Option('--recipe <name>', 'preset the flags are layered on (default: default)').choices(RECIPE_NAMES))
    .addOption(choiceOption('--arch <name>', 'architecture', model.name))
    .addOption(new Option('--model <name>', 'not a train flag: --arch sets the architecture').hideHelp())
    .option('--width <n>', "channels of the first stage (default: the architecture's)", integerAtLeast(1))
    .option('--dropout <p>', `dropout before the classifier${defaultOf(model.dropout)}`, parseNumber)
    .option(
      '--size <px>',
      `model input size: ${IMAGE_SIZES.join(', ')} on RetinaMNIST${defaultOf(fields.size)}; with --data any size up to the ` +
        `prepared one (default: ${PREPARED_TRAINING_SIZE}, or the prepared size when smaller)`,
      integerAtLeast(MIN_PREPARED_SIZE),
    )
    .option('--epochs <n>', `training epochs${defaultOf(fields.epochs)}`, integerAtLeast(1))
    .option('--batch-size <n>', `images per step, at least 2${defaultOf(fields.batchSize)}`, integerAtLeast(2))
    .addOption(precisionOption('train'))
    .addOption(choiceOption('--optimizer <name>', 'optimizer', optimizer.name))
    .option('--lr <rate>', `peak learning rate${defaultOf(optimizer.lr)}`, parseNumber)
    .option('--weight-decay <wd>', `weight decay${defaultOf(optimizer.weightDecay)}`, parseNumber)
    .addOption(choiceOption('--schedule <name>', 'learning-rate schedule', fields.schedule.unwrap().shape.name))
    .addOption(choiceOption('--loss <kind>', 'training loss', loss.kind))
    .addOption(choiceOption('--class-weights <mode>', 'per-grade loss weights from the label histogram', loss.classWeights))
    .option('--label-smoothing <eps>', `cross-entropy label smoothing${defaultOf(loss.labelSmoothing)}`, parseNumber)
    .addOption(choiceOption('--sampler <kind>', 'how epochs draw training images', fields.sampler))
    .option('--no-augment', "train without augmentation (default: the recipe's augmentation)")
    .option('--ema <decay>', `evaluate an exponential moving average of the weights, e.g. 0.99${defaultOf(fields.ema)}`, parseNumber)
    .option(
      '--ensemble <k>',
      `train k models from different seeds and average their probabilities${defaultOf(fields.ensemble)}`,
      integerAtLeast(1),
    )
    .addOption(choiceOption('--select-on <metric>', 'validation metric that picks the best epoch', fields.selectOn))
    .option(
      '--patience <epochs>',
      `stop after this many epochs without improvement, 0 never${defaultOf(fields.patience)}`,
      integerAtLeast(0),
    )
    .option('--seed <n>', `random seed: same seed and config, same result${defaultOf(fields.seed)}`, integerAtLeast(0))
    .option('--threads <n>', 'libtorch intra-op threads (default: all cores)', integerAtLeast(1))
    .option(
      '--sync-batch-norm',
      "data-parallel ranks share batch-norm statistics over the global batch (default: each rank's own, as PyTorch DDP)",
    )
    .addOption(nprocOption())
    .addOption(distTimeoutOption())
    .addOption(
      new Option('--resume', "continue the interrupted run in --out from its last checkpoint, with its config.json's settings").conflicts(
        'overwrite',
      ),
    )
    .option('--overwrite', "replace the run (or a run's files) already in --out")
    .option('--print-config', 'print the resolved run configuration as JSON (what --config takes) and exit without training')
    .option('--json', 'print the final metrics as JSON on stdout')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade train --out runs/default                 # the default recipe (RESULTS.md)
  retinagrade train --recipe datasheet --out runs/ds   # the datasheet's recipe, exactly
  retinagrade train --arch cnn --epochs 2 --out runs/quick --data-dir ../shared/data
  retinagrade train --arch resnet18 --print-config     # the configuration, without training
  retinagrade train --out runs/default --resume        # after an interruption
  retinagrade train --nproc 2 --out runs/ddp           # data-parallel on 2 local processes
  retinagrade train --data data/aptos-224 --arch resnet18 --size 224 --init runs/one --out runs/aptos`,
    )
    .action(async (flags: RunFlags & LaunchFlags, command: Command) => {
      if (flags.model !== undefined) {
        command.error(
          `error: train takes the architecture as --arch (e.g. --arch ${flags.model}); ` +
            '--model names a run directory in evaluate, predict and serve',
        );
      }
      const typed = typedConfigFlags(command);
      const resumed = flags.resume && flags.out ? resumedRunConfig(flags.out, typed) : undefined;
      const config = resumed ?? resolveRunConfig(typed);
      if (flags.printConfig) {
        process.stdout.write(`${JSON.stringify(savedConfigOf(config), null, 2)}\n`);
        return;
      }
      if (!flags.out) command.error("error: required option '--out <dir>' not specified");
      const outDir = flags.out;
      const bar = downloadBar();
      // A prepared dataset (--data) is read from its folder; only RetinaMNIST is fetched on first use.
      if (!config.data) await ensureRetinaFile({ dataDir: flags.dataDir, size: config.size }, firstUse(flags, bar)).finally(bar.stop);
      const existedBefore = existsSync(outDir);
      await launchTrain(flags, config, async (group) => {
        const lead = (group?.rank ?? 0) === 0; // the other ranks train quietly; their errors still print
        const progress = lead ? createProgress() : undefined;
        const stopHandlers = lead ? stopOnSignal(outDir, flags.dataDir, existedBefore, progress) : () => {};
        try {
          const { metrics } = await train({
            config,
            outDir,
            dataDir: flags.dataDir,
            resume: flags.resume,
            overwrite: flags.overwrite,
            progress,
            say: lead ? say : () => {},
            group,
          });
          if (!lead) return;
          if (flags.json) process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
          else process.stdout.write(`${summary(metrics)}\n`);
        } finally {
          stopHandlers();
        }
      });
    });

  const montage = program
    .command('montage')
    .description('write a PNG grid of real training images (first column, rows labelled by grade) and augmented versions (columns after)')
    .requiredOption('--out <png>', 'PNG file to write');
  addDataOptions(montage)
    .addOption(new Option('--size <px>', 'model input size the images are shown at').choices(IMAGE_SIZES.map(String)).default('64'))
    .option('--count <n>', 'images (rows)', integerAtLeast(1), 8)
    .option('--variants <n>', 'augmented columns', integerAtLeast(1), 4)
    .option('--scale <n>', 'integer upscaling for visibility', integerAtLeast(1), 3)
    .option('--seed <n>', 'seed of the augmentation draws', integerAtLeast(0), 0)
    .addOption(new Option('--recipe <name>', 'whose augmentation to show').choices(RECIPE_NAMES).default('default'))
    .option('--config <file>', 'run config JSON whose augmentation to show (layered on the recipe)')
    .addHelpText(
      'after',
      `
Examples:
  retinagrade montage --out montage.png --size 64 --count 10
  retinagrade montage --out datasheet.png --recipe datasheet`,
    )
    .action(
      async (flags: {
        out: string;
        dataDir?: string;
        download: boolean;
        mirror?: string;
        size: string;
        count: number;
        variants: number;
        scale: number;
        seed: number;
        recipe: string;
        config?: string;
      }) => {
        const { augment } = resolveRunConfig({ recipe: flags.recipe, config: flags.config });
        if (!augment) {
          const source = flags.config ? `recipe '${flags.recipe}' with ${flags.config}` : `recipe '${flags.recipe}'`;
          throw new UserError(`${source} trains without augmentation: nothing to show`);
        }
        const wanted = { dataDir: flags.dataDir, size: Number(flags.size) };
        const bar = downloadBar();
        await ensureRetinaFile(wanted, firstUse(flags, bar)).finally(bar.stop);
        const data = loadRetinaTensors(wanted);
        if (flags.count > data.train.count)
          throw new UserError(`--count ${flags.count} is more than the ${data.train.count} training images`);
        // Grades in turn (0, 1, 2, 3, 4, 0, ...), each row labelled with its grade.
        const rows = rowsByGrade(data.train.labels, flags.count);
        const images = takeBatch(data.train, Int32Array.from(rows)).x;
        const labels = rows.map((i) => `${data.train.labels[i]} ${GRADE_NAMES[data.train.labels[i]!]}`);
        const { width, height } = await writeMontage(flags.out, images, augment, new torch.Generator(flags.seed), {
          count: flags.count,
          variants: flags.variants,
          scale: flags.scale,
          labels,
        })
          .finally(() => images.dispose())
          .catch((error: Error) => {
            throw new UserError(`cannot write ${flags.out}: ${error.message}`);
          });
        const upsampling = data.source.upsampled_from ? `, images upsampled from ${data.source.upsampled_from}` : '';
        process.stdout.write(`wrote ${flags.out} (${width}x${height})${upsampling}\n`);
      },
    );
}
