// The training loop: epochs of (sample -> augment -> forward -> loss -> step), validation after
// each epoch, the best weights kept by the validation metric, a checkpoint every epoch for
// --resume, and finally test metrics and predictions in the run directory.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ModelConfigSchema, countMacs, createModel, seedInit, type FeatureClassifier, type ModelConfig, type Module } from '../nn/index.js';
import { augment } from '../data/augment.js';
import { ShuffleSampler, WeightedRandomSampler, classWeights, type EpochSampler } from '../data/sampler.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { createOptimizer, createSchedule, type Optimizer } from './optimizer.js';
import type { RunConfig } from './config.js';
import { createObjective } from './objective.js';
import { Ensemble, LogProbabilityObjective } from './ensemble.js';
import type { Objective } from './losses.js';
import { evaluateSplit } from './inference.js';
import { prepareData, type PreparedData } from './dataset.js';
import { RUN_FILES, RunDir } from './run-dir.js';
import { writeRunOutputs, type MemberSummary, type RunMetrics } from './outputs.js';
import { UserError } from '../errors.js';

/** Per-step progress of an epoch (the CLI draws it as a bar on a terminal). */
export interface Progress {
  start(label: string, total: number): void;
  tick(values?: Record<string, string>): void;
  stop(): void;
}

export interface TrainOptions {
  config: RunConfig;
  outDir: string;
  dataDir?: string;
  resume?: boolean;
  /** Replace a finished or interrupted run in `outDir` instead of refusing to. */
  overwrite?: boolean;
  progress?: Progress;
  /** Human-readable lines (epoch summaries); the JSONL log is always written. */
  say?: (line: string) => void;
}

export interface EpochLog {
  epoch: number;
  /** The training objective (weighted, smoothed or focal as configured) on augmented batches. */
  train_loss: number;
  /** Plain negative log-likelihood on the validation split: not comparable with train_loss. */
  val_loss: number;
  val_acc: number;
  val_auc: number;
  val_qwk: number;
  lr: number;
  seconds: number;
}

interface CheckpointState {
  epochsDone: number;
  bestEpoch: number;
  bestScore: number;
  optimizer: object;
  secondsSoFar: number;
  /** Early stopping ended the run: a resume goes straight to the final evaluation. */
  stopped: boolean;
}

/** Stored in the checkpoint's safetensors metadata, so weights and state are one atomic file. */
const STATE_KEY = 'retinagrade_state';
/** Stored in best.safetensors' metadata: the epoch whose weights it holds. */
const BEST_EPOCH_KEY = 'epoch';

const NUM_CLASSES = 5;

/** Mixes seed and epoch into one generator seed, so epoch e draws the same numbers on resume. */
const epochSeed = (seed: number, epoch: number): number => (seed * 1_000_003 + epoch * 7_919 + 17) % 2 ** 31;

export async function train(options: TrainOptions): Promise<{ runDir: RunDir; metrics: RunMetrics }> {
  const { config, say = () => {} } = options;
  if (config.threads) torch.setNumThreads(config.threads);
  const run = new RunDir(options.outDir);
  if (options.resume && !run.has('config')) {
    throw new UserError(`nothing to resume in ${options.outDir}: it holds no run (no ${RUN_FILES.config})`);
  }
  if (!options.resume && !options.overwrite && run.has('config')) {
    throw new UserError(`${options.outDir} already holds a run: continue it with --resume, replace it with --overwrite, or choose another --out`);
  }
  const strayFiles = run.runFilesPresent();
  if (!options.resume && !options.overwrite && strayFiles.length > 0) {
    throw new UserError(`${options.outDir} holds files a run would replace (${strayFiles.join(', ')}): choose another --out, or pass --overwrite`);
  }
  run.create();
  const data = prepareData({ dataDir: options.dataDir, size: config.size });
  if (data.source.upsampled_from) say(`images upsampled from ${data.source.upsampled_from}x${data.source.upsampled_from} to ${config.size}x${config.size} (bilinear)`);
  try {
    if (config.ensemble === 1) {
      const trained = await trainModel(run, config, data, { ...options, resume: Boolean(options.resume) });
      try {
        const metrics = writeRunOutputs(run, trained.model, trained.objective, data, {
          bestEpoch: trained.bestEpoch,
          epochsRun: trained.epochsRun,
          seconds: trained.seconds,
          config,
          modelConfig: modelConfigOf(config),
        });
        return { runDir: run, metrics };
      } finally {
        trained.model.dispose();
      }
    }
    return { runDir: run, metrics: await trainEnsemble(run, config, data, options) };
  } finally {
    disposeData(data);
  }
}

/**
 * The model config a run config implies: the head's width depends on the objective, and above
 * 32 px the compact CNN's first convolution has stride 2 unless the config says otherwise (like
 * ResNet's standard stem; at 64 px, upsampled from 28, it validated better at a quarter of the FLOPs).
 */
export function modelConfigOf(config: RunConfig): ModelConfig {
  const outputs = createObjective(config.loss, NUM_CLASSES).outputs;
  const stem = config.model.name === 'cnn' && config.size > 32 ? { stemStride: config.model.stemStride ?? 2 } : {};
  return ModelConfigSchema.parse({ ...config.model, ...stem, inputSize: config.size, inChannels: 3, numClasses: NUM_CLASSES, outputs });
}

/** Member k's seed: ensembles of different seeds share no member (seed s uses s*K ... s*K+K-1). */
export const memberSeed = (seed: number, k: number, members: number): number => seed * members + k;

/**
 * Trains the members one after another, each as a complete run in members/<k>/ (its own log,
 * checkpoint and best weights, so --resume continues the member that was interrupted), then saves
 * all of them as one model in the run's best.safetensors and evaluates their average.
 */
async function trainEnsemble(run: RunDir, config: RunConfig, data: PreparedData, options: TrainOptions): Promise<RunMetrics> {
  const { say = () => {} } = options;
  const modelConfig = modelConfigOf(config);
  beginRun(run, { ...config, model: modelConfig, threads: undefined }, Boolean(options.resume));
  const members: FeatureClassifier[] = [];
  const summaries: MemberSummary[] = [];
  let seconds = 0;
  try {
    for (let k = 0; k < config.ensemble; k++) {
      const memberRun = run.member(k);
      memberRun.create();
      const memberConfig: RunConfig = { ...config, ensemble: 1, seed: memberSeed(config.seed, k, config.ensemble) };
      say(`ensemble member ${k + 1}/${config.ensemble} (seed ${memberConfig.seed})`);
      const trained = await trainModel(memberRun, memberConfig, data, {
        ...options,
        resume: Boolean(options.resume) && memberRun.has('config'),
        onEpoch: () => run.writeMemberLog(config.ensemble),
      });
      members.push(trained.model);
      const val = evaluateSplit(trained.model, trained.objective, data.val).metrics;
      summaries.push({
        seed: memberConfig.seed,
        best_epoch: trained.bestEpoch,
        epochs_run: trained.epochsRun,
        seconds: trained.seconds,
        val: { acc: val.acc, auc: val.auc, qwk: val.qwk },
      });
      seconds += trained.seconds;
    }
  } catch (error) {
    for (const member of members) member.dispose(); // the finished members' weights are on disk
    throw error;
  }
  const ensemble = new Ensemble(members, createObjective(config.loss, NUM_CLASSES));
  saveSafetensors(run.file('best'), ensemble.stateDict(), { model: JSON.stringify(modelConfig), objective: config.loss.kind, ensemble: String(config.ensemble) });
  const metrics = writeRunOutputs(run, ensemble, new LogProbabilityObjective(NUM_CLASSES), data, {
    bestEpoch: summaries.map((m) => m.best_epoch),
    epochsRun: summaries.map((m) => m.epochs_run),
    seconds,
    config,
    modelConfig,
    members: summaries,
  });
  ensemble.dispose();
  return metrics;
}

/**
 * Starts a run directory afresh (config written, old outputs removed), or, resuming, checks that
 * the run there has this configuration: a mismatch is refused before anything is removed.
 */
function beginRun(run: RunDir, savedConfig: object, resume: boolean): void {
  if (resume) {
    const previous: Record<string, unknown> = { ...run.readJson<Record<string, unknown>>('config'), threads: undefined };
    // Compared as values (key order is not meaningful); undefined keys dropped as JSON drops them.
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(previous)), JSON.parse(JSON.stringify(savedConfig)))) {
      const hint = previous.ensemble === undefined ? ' (it was saved before ensembles existed: add --ensemble 1)' : ' (resume with the same flags)';
      throw new UserError(`cannot resume ${run.path}: its config.json differs from this run's configuration${hint}`);
    }
  } else {
    run.clear(); // an --overwrite must not leave the old run's weights for a later --resume
    run.writeJson('config', savedConfig);
  }
}

interface TrainedModel {
  /** The evaluated weights (the EMA when enabled) at the selected epoch, in eval mode. */
  model: FeatureClassifier;
  objective: Objective;
  bestEpoch: number;
  /** Epochs trained: fewer than configured when early stopping ended the run. */
  epochsRun: number;
  seconds: number;
}

/** One model's training run in `run`: the epochs, selection on validation, the checkpoints. */
async function trainModel(
  run: RunDir,
  config: RunConfig,
  data: PreparedData,
  options: Pick<TrainOptions, 'progress' | 'say'> & { resume: boolean; onEpoch?: () => void },
): Promise<TrainedModel> {
  const { say = () => {} } = options;
  seedInit(config.seed);
  torch.manualSeed(config.seed);
  const { classWeights: weightMode } = config.loss;
  const weights = weightMode === 'none' ? undefined : classWeights(data.train.labels, NUM_CLASSES, weightMode);
  const objective = createObjective(config.loss, NUM_CLASSES, weights);
  const sampler: EpochSampler =
    config.sampler === 'weighted' ? WeightedRandomSampler.balanced(data.train.labels, NUM_CLASSES) : new ShuffleSampler(data.train.count);
  const modelConfig = modelConfigOf(config);
  const model = createModel(modelConfig);
  const ema = config.ema > 0 ? createModel(modelConfig) : undefined;
  ema?.loadStateDict(model.stateDict());
  const optimizer = createOptimizer(config.optimizer, model.parameters());
  const macs = countMacs(model, [3, config.size, config.size]);
  say(`model ${config.model.name} @${config.size}: ${(model.parameterCount() / 1e6).toFixed(2)}M parameters, ${((2 * macs) / 1e6).toFixed(1)} MFLOPs per image`);

  try {
    return await runEpochs(run, config, data, options, { modelConfig, model, ema, optimizer, objective, sampler });
  } catch (error) {
    for (const module of [model, ema]) module?.dispose();
    optimizer.dispose();
    throw error;
  }
}

/** What trainModel builds for runEpochs. */
interface TrainingParts {
  modelConfig: ModelConfig;
  model: FeatureClassifier;
  ema: FeatureClassifier | undefined;
  optimizer: Optimizer;
  objective: Objective;
  sampler: EpochSampler;
}

/** trainModel's epochs: returns the selected weights in the evaluated module, and frees the rest. */
async function runEpochs(
  run: RunDir,
  config: RunConfig,
  data: PreparedData,
  options: Pick<TrainOptions, 'progress' | 'say'> & { resume: boolean; onEpoch?: () => void },
  { modelConfig, model, ema, optimizer, objective, sampler }: TrainingParts,
): Promise<TrainedModel> {
  const { say = () => {} } = options;
  let state: CheckpointState = { epochsDone: 0, bestEpoch: -1, bestScore: -Infinity, optimizer: {}, secondsSoFar: 0, stopped: false };
  beginRun(run, { ...config, model: modelConfig, threads: undefined }, options.resume);
  if (options.resume && run.has('checkpoint')) {
    state = resumeFrom(run, model, ema, optimizer);
    say(`resuming after epoch ${state.epochsDone}`);
  } else if (options.resume) {
    run.truncateLog(0); // interrupted before its first checkpoint: the same run, from the start
  }

  const evaluated = ema ?? model;
  const stepsPerEpoch = Math.ceil(sampler.length / config.batchSize);
  const schedule = createSchedule(config, stepsPerEpoch);
  const started = performance.now() - state.secondsSoFar * 1000;
  for (let epoch = state.epochsDone; epoch < config.epochs && !state.stopped; epoch++) {
    const epochStart = performance.now();
    const generator = new torch.Generator(epochSeed(config.seed, epoch));
    // Dropout draws from libtorch's global generator: seeded per epoch too, on another stream.
    torch.manualSeed(epochSeed(config.seed, epoch) ^ 0x5bd1e995);
    const order = sampler.epoch(generator);
    model.train();
    let lossSum = 0;
    let trained = 0;
    let lr = 0;
    options.progress?.start(`epoch ${epoch + 1}/${config.epochs}`, stepsPerEpoch);
    for (let step = 0; step < stepsPerEpoch; step++) {
      const batchIndex = order.slice(step * config.batchSize, (step + 1) * config.batchSize);
      if (batchIndex.length < 2) continue; // batch norm needs two samples
      lr = schedule(epoch * stepsPerEpoch + step);
      optimizer.lr = lr;
      const loss = torch.tidy(() => {
        const index = torch.tensor(batchIndex, [batchIndex.length], 'int64');
        let x = data.train.x.indexSelect(0, index);
        if (config.augment) x = augment(x, config.augment, generator);
        const out = objective.loss(model.forward(x), data.train.y.indexSelect(0, index));
        optimizer.zeroGrad();
        out.backward();
        optimizer.step();
        return out.item();
      });
      if (!Number.isFinite(loss)) {
        throw new UserError(`training diverged at epoch ${epoch + 1}, step ${step + 1} (loss ${loss}): lower --lr`);
      }
      if (ema) updateEma(ema, model, emaDecay(config.ema, epoch * stepsPerEpoch + step));
      lossSum += loss * batchIndex.length;
      trained += batchIndex.length;
      options.progress?.tick({ loss: loss.toFixed(4) });
      // Node runs the binding's handle finalizers from the event loop: let it, or they pile up.
      await yieldToEventLoop();
    }
    options.progress?.stop();

    const val = evaluateSplit(evaluated, objective, data.val);
    const entry: EpochLog = {
      epoch: epoch + 1,
      train_loss: lossSum / trained,
      val_loss: val.loss,
      val_acc: val.metrics.acc,
      val_auc: val.metrics.auc,
      val_qwk: val.metrics.qwk,
      lr,
      seconds: (performance.now() - epochStart) / 1000,
    };
    run.appendLog(entry);
    options.onEpoch?.();
    say(
      `epoch ${entry.epoch}/${config.epochs} loss ${entry.train_loss.toFixed(4)} val loss ${entry.val_loss.toFixed(4)} ` +
        `acc ${entry.val_acc.toFixed(3)} auc ${entry.val_auc.toFixed(3)} qwk ${entry.val_qwk.toFixed(3)} (${entry.seconds.toFixed(1)}s)`,
    );
    // QWK is undefined (NaN) while a model predicts a single grade: it then ranks lowest, and
    // the first epoch is always kept so that a run has weights to select.
    const score = Number.isNaN(val.metrics[config.selectOn]) ? -Infinity : val.metrics[config.selectOn];
    if (score > state.bestScore || state.bestEpoch < 0) {
      state.bestScore = score;
      state.bestEpoch = epoch + 1;
      saveSafetensors(run.file('best'), evaluated.stateDict(), {
        model: JSON.stringify(modelConfig),
        objective: config.loss.kind,
        [BEST_EPOCH_KEY]: String(state.bestEpoch),
      });
    }
    state.epochsDone = epoch + 1;
    state.secondsSoFar = (performance.now() - started) / 1000;
    state.stopped = config.patience > 0 && epoch + 1 - state.bestEpoch >= config.patience;
    saveCheckpoint(run, model, ema, optimizer, state);
    if (state.stopped) say(`early stop: no ${config.selectOn} improvement for ${config.patience} epochs`);
  }

  const best = loadSafetensors(run.file('best'));
  evaluated.loadStateDict(best.tensors);
  for (const t of best.tensors.values()) t.dispose();
  if (ema) model.dispose();
  optimizer.dispose();
  evaluated.eval();
  return { model: evaluated, objective, bestEpoch: state.bestEpoch, epochsRun: state.epochsDone, seconds: (performance.now() - started) / 1000 };
}

/** The EMA decay at step t, warmed up as (1+t)/(10+t) so early epochs do not average in the random init. */
const emaDecay = (decay: number, t: number): number => Math.min(decay, (1 + t) / (10 + t));

function updateEma(ema: Module, model: Module, decay: number): void {
  const source = model.stateDict();
  torch.noGrad(() => {
    for (const [name, target] of ema.stateDict()) {
      const value = source.get(name)!;
      if (target.dtype === 'float32') target.lerpInPlace(value, 1 - decay);
      else target.copyInPlace(value);
    }
  });
}

function saveCheckpoint(run: RunDir, model: Module, ema: Module | undefined, optimizer: Optimizer, state: CheckpointState): void {
  const optimizerState = optimizer.stateDict(); // copies, freed below
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of model.stateDict()) tensors.set(`model.${k}`, v);
  if (ema) for (const [k, v] of ema.stateDict()) tensors.set(`ema.${k}`, v);
  for (const [k, v] of optimizerState.tensors) tensors.set(`optimizer.${k}`, v);
  saveSafetensors(run.file('checkpoint'), tensors, { [STATE_KEY]: JSON.stringify({ ...state, optimizer: optimizerState.meta }) });
  for (const t of optimizerState.tensors.values()) t.dispose();
}

function resumeFrom(run: RunDir, model: Module, ema: Module | undefined, optimizer: Optimizer): CheckpointState {
  const checkpoint = loadSafetensors(run.file('checkpoint'));
  const saved = checkpoint.tensors;
  const state = JSON.parse(checkpoint.metadata[STATE_KEY] ?? 'null') as CheckpointState | null;
  if (!state) throw new UserError(`${run.file('checkpoint')} has no training state: it is not a retinagrade checkpoint`);
  state.bestScore ??= -Infinity; // JSON stores -Infinity as null
  const part = (prefix: string): Map<string, Tensor> =>
    new Map([...saved].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  model.loadStateDict(part('model.'));
  ema?.loadStateDict(part('ema.'));
  optimizer.loadStateDict({ tensors: part('optimizer.'), meta: state.optimizer });
  for (const t of saved.values()) t.dispose();
  run.truncateLog(state.epochsDone);
  // best.safetensors is written before the checkpoint: after an interruption between the two it
  // holds weights of the epoch about to be re-run, not of state.bestEpoch. That epoch's re-run
  // must then replace it whatever it scores, or the file and the selected epoch would disagree.
  if (run.has('best') && bestEpochOnDisk(run) > state.epochsDone) {
    state.bestScore = -Infinity;
    state.bestEpoch = -1; // kept even if it scores NaN (see the selection in runEpochs)
  }
  return state;
}

/** The epoch best.safetensors says it holds (0 for files written before it said so). */
function bestEpochOnDisk(run: RunDir): number {
  const best = loadSafetensors(run.file('best'));
  for (const t of best.tensors.values()) t.dispose();
  return Number(best.metadata[BEST_EPOCH_KEY] ?? 0);
}

function disposeData(data: PreparedData): void {
  for (const split of [data.train, data.val, data.test]) {
    split.x.dispose();
    split.y.dispose();
  }
}
