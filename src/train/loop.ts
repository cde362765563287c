// One model's training run, start to finish: build it, then epochs of (sample -> augment ->
// forward -> loss -> step), validation after each epoch, the best weights kept by the validation
// metric, a checkpoint every epoch for --resume.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { augment } from '../data/augment/index.js';
import { NUM_GRADES } from '../data/grades.js';
import { takeBatch, type TrainingData } from '../data/training-data.js';
import { ShuffleSampler, WeightedRandomSampler, classWeights, type EpochSampler } from '../data/sampler.js';
import {
  broadcastBuffers,
  broadcastTensors,
  checkRanksAgree,
  rankSeed,
  reduceGradients,
  shardOf,
  startFromRank0,
  sumOverRanks,
  synchronizeBatchNorm,
} from '../distributed/data-parallel.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import { UserError } from '../errors.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { evaluateSplit } from '../model/inference.js';
import { WEIGHTS_METADATA } from '../model/open-run.js';
import type { RunDir } from '../model/run-dir.js';
import {
  countMacs,
  createModel,
  createObjective,
  renameLegacyKeys,
  seedInit,
  type FeatureClassifier,
  type Module,
  type Objective,
} from '../nn/index.js';
import { createOptimizer, createSchedule } from '../optim/index.js';
import * as torch from '../torch/index.js';
import { FRESH_STATE, beginRun, resumeFrom, saveCheckpoint, type LoopState, type TrainedState } from './checkpoint.js';
import { modelConfigOf, type RunConfig } from './config.js';
import { initFromRun } from './init.js';

/** Per-step progress of an epoch (the CLI draws it as a bar on a terminal). */
export interface Progress {
  start(label: string, total: number): void;
  tick(values?: Record<string, string>): void;
  stop(): void;
}

export interface LoopOptions {
  resume: boolean;
  progress?: Progress;
  /** Human-readable lines (epoch summaries); the JSONL log is always written. */
  say?: (line: string) => void;
  /** Called after each epoch's log line is written. */
  onEpoch?: () => void;
  /** Train data-parallel with these ranks (src/distributed): rank 0 alone evaluates and writes `run`. */
  group?: ProcessGroup;
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

export interface TrainedModel {
  /** The evaluated weights (the EMA when enabled) at the selected epoch, in eval mode. */
  model: FeatureClassifier;
  objective: Objective;
  bestEpoch: number;
  /** Epochs trained: fewer than configured when early stopping ended the run. */
  epochsRun: number;
  seconds: number;
}

/** Mixes seed and epoch into one generator seed, so epoch e draws the same numbers on resume. */
const epochSeed = (seed: number, epoch: number): number => (seed * 1_000_003 + epoch * 7_919 + 17) % 2 ** 31;

/** The EMA decay at step t, warmed up as (1+t)/(10+t) so early epochs do not average in the random init. */
export const emaDecay = (decay: number, t: number): number => Math.min(decay, (1 + t) / (10 + t));

/** ema <- decay * ema + (1 - decay) * model for float tensors; integer buffers are copied. */
export function updateEma(ema: Module, model: Module, decay: number): void {
  const source = model.stateDict();
  torch.noGrad(() => {
    for (const [name, target] of ema.stateDict()) {
      const value = source.get(name)!;
      if (target.dtype === 'float32') target.lerpInPlace(value, 1 - decay);
      else target.copyInPlace(value);
    }
  });
}

/**
 * Whether an epoch scoring `score` becomes the selected one. QWK is undefined (NaN) while a model
 * predicts a single grade: it then ranks lowest, and the first epoch is always kept so that a run
 * has weights to select.
 */
export function selectsEpoch(state: Pick<LoopState, 'bestScore' | 'bestEpoch'>, score: number): boolean {
  return (Number.isNaN(score) ? -Infinity : score) > state.bestScore || state.bestEpoch < 0;
}

/** Whether early stopping ends the run after `epochsDone` epochs (patience 0 never stops). */
export const stopsEarly = (patience: number, epochsDone: number, bestEpoch: number): boolean =>
  patience > 0 && epochsDone - bestEpoch >= patience;

/** Trains one model in `run` and returns its selected weights in eval mode (the rest is freed). */
export async function trainModel(run: RunDir, config: RunConfig, data: TrainingData, options: LoopOptions): Promise<TrainedModel> {
  const { say = () => {} } = options;
  seedInit(config.seed);
  torch.manualSeed(config.seed);
  const { classWeights: weightMode } = config.loss;
  const weights = weightMode === 'none' ? undefined : classWeights(data.train.labels, NUM_GRADES, weightMode);
  const objective = createObjective(config.loss, NUM_GRADES, weights);
  const sampler: EpochSampler =
    config.sampler === 'weighted' ? WeightedRandomSampler.balanced(data.train.labels, NUM_GRADES) : new ShuffleSampler(data.train.count);
  const modelConfig = modelConfigOf(config);
  const model = createModel(modelConfig);
  if (config.init) initFromRun(model, config.init);
  const ema = config.ema > 0 ? createModel(modelConfig) : undefined;
  ema?.loadStateDict(model.stateDict());
  const optimizer = createOptimizer(config.optimizer, model.parameters());
  const macs = countMacs(model, [3, config.size, config.size]);
  const megaParameters = (model.parameterCount() / 1e6).toFixed(2);
  const megaFlops = ((2 * macs) / 1e6).toFixed(1);
  const precision = modelConfig.precision ?? 'fp32';
  say(`model ${config.model.name} @${config.size}: ${megaParameters}M parameters, ${megaFlops} MFLOPs per image, ${precision}`);
  const { fallback } = torch.resolvePrecision(config.precision ?? 'fp32');
  if (fallback) say(`warning: ${fallback}`);
  try {
    return await runEpochs(run, config, data, options, { model, ema, optimizer }, objective, sampler);
  } catch (error) {
    for (const module of [model, ema]) module?.dispose();
    optimizer.dispose();
    throw error;
  }
}

/** trainModel's epochs: returns the selected weights in the evaluated module, and frees the rest. */
async function runEpochs(
  run: RunDir,
  config: RunConfig,
  data: TrainingData,
  options: LoopOptions,
  trained: TrainedState & { model: FeatureClassifier; ema: FeatureClassifier | undefined },
  objective: Objective,
  sampler: EpochSampler,
): Promise<TrainedModel> {
  const { say = () => {} } = options;
  const { model, ema, optimizer } = trained;
  const { group } = options;
  const rank = group?.rank ?? 0;
  const worldSize = group?.worldSize ?? 1;
  const writes = rank === 0;
  const modelConfig = modelConfigOf(config);
  let state: LoopState = { ...FRESH_STATE };
  if (writes) {
    beginRun(run, config, options.resume);
    if (options.resume && run.has('checkpoint')) {
      state = resumeFrom(run, trained, config);
      const ranksBefore = state.sampler?.worldSize ?? 1;
      const ranks = ranksBefore === worldSize ? '' : ` (trained by ${ranksBefore} ranks so far, now ${worldSize})`;
      say(`resuming after epoch ${state.epochsDone}${ranks}`);
    } else if (options.resume) {
      run.truncateLog(0); // interrupted before its first checkpoint: the same run, from the start
    }
  }
  if (group) state = await startFromRank0(group, [model, ema], optimizer, state);
  if (group && config.syncBatchNorm) synchronizeBatchNorm(group, model);

  const evaluated = ema ?? model;
  const stepsPerEpoch = Math.ceil(sampler.length / config.batchSize);
  const schedule = createSchedule(config.schedule, config.optimizer.lr, config.epochs, stepsPerEpoch);
  const started = performance.now() - state.secondsSoFar * 1000;
  for (let epoch = state.epochsDone; epoch < config.epochs && !state.stopped; epoch++) {
    const epochStart = performance.now();
    const generator = new torch.Generator(epochSeed(config.seed, epoch));
    // Dropout draws from libtorch's global generator: seeded per epoch too, on another stream.
    torch.manualSeed(rankSeed(epochSeed(config.seed, epoch) ^ 0x5bd1e995, rank));
    // The epoch's order is the same on every rank; each augments its shard with its own draws.
    const order = sampler.epoch(generator);
    const augmentGenerator = rank === 0 ? generator : new torch.Generator(rankSeed(epochSeed(config.seed, epoch), rank));
    model.train();
    let lossSum = 0;
    let seen = 0;
    let lr = 0;
    options.progress?.start(`epoch ${epoch + 1}/${config.epochs}`, stepsPerEpoch);
    for (let step = 0; step < stepsPerEpoch; step++) {
      const globalBatch = order.slice(step * config.batchSize, (step + 1) * config.batchSize);
      if (Math.floor(globalBatch.length / worldSize) < 2) continue; // batch norm needs two samples on every rank
      const batchIndex = group ? shardOf(globalBatch, rank, worldSize) : globalBatch;
      lr = schedule(epoch * stepsPerEpoch + step);
      optimizer.lr = lr;
      const loss = torch.tidy(() => {
        const batch = takeBatch(data.train, batchIndex);
        const x = config.augment ? augment(batch.x, config.augment, augmentGenerator) : batch.x;
        if (x !== batch.x) batch.x.dispose(); // not needed through the forward and backward passes
        const out = objective.loss(model.forward(x), batch.y);
        optimizer.zeroGrad();
        // A rank's share of the global batch's mean loss: the ranks' gradients then add up to its gradient.
        (group ? out.mul(batchIndex.length / globalBatch.length) : out).backward();
        if (!group) optimizer.step();
        return out.item();
      });
      if (group) {
        await reduceGradients(group, model.parameters());
        optimizer.step();
      }
      if (!Number.isFinite(loss)) {
        throw new UserError(`training diverged at epoch ${epoch + 1}, step ${step + 1} (loss ${loss}): lower --lr`);
      }
      if (ema) updateEma(ema, model, emaDecay(config.ema, epoch * stepsPerEpoch + step));
      lossSum += loss * batchIndex.length;
      seen += batchIndex.length;
      options.progress?.tick({ loss: loss.toFixed(4) });
      // Node runs the binding's handle finalizers from the event loop: let it, or they pile up.
      await yieldToEventLoop();
    }
    options.progress?.stop();
    if (group) {
      [lossSum, seen] = await sumOverRanks(group, [lossSum, seen]);
      await broadcastBuffers(group, [model, ema]);
      await checkRanksAgree(group, [model, ema], `in epoch ${epoch + 1}`);
    }
    if (writes) {
      const val = evaluateSplit(evaluated, objective, data.val);
      const entry: EpochLog = {
        epoch: epoch + 1,
        train_loss: lossSum / seen,
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
      const score = val.metrics[config.selectOn];
      if (selectsEpoch(state, score)) {
        state.bestScore = Number.isNaN(score) ? -Infinity : score;
        state.bestEpoch = epoch + 1;
        saveSafetensors(run.file('best'), evaluated.stateDict(), {
          [WEIGHTS_METADATA.model]: JSON.stringify(modelConfig),
          [WEIGHTS_METADATA.objective]: config.loss.kind,
          [WEIGHTS_METADATA.epoch]: String(state.bestEpoch),
        });
      }
    }
    state.epochsDone = epoch + 1;
    state.secondsSoFar = (performance.now() - started) / 1000;
    if (writes) {
      state.stopped = stopsEarly(config.patience, epoch + 1, state.bestEpoch);
      state.sampler = { kind: config.sampler, seed: config.seed, nextEpoch: epoch + 1, globalBatch: config.batchSize, worldSize };
      saveCheckpoint(run, trained, state);
      if (state.stopped) say(`early stop: no ${config.selectOn} improvement for ${config.patience} epochs`);
    }
    // Rank 0's choices: the others follow them (the score that decided is rank 0's alone).
    if (group) Object.assign(state, await group.broadcastJson(writes ? { bestEpoch: state.bestEpoch, stopped: state.stopped } : undefined));
  }

  if (writes) {
    const best = loadSafetensors(run.file('best'));
    evaluated.loadStateDict(renameLegacyKeys(best.tensors));
    for (const t of best.tensors.values()) t.dispose();
  }
  if (group) await broadcastTensors(group, evaluated.stateDict().values()); // every rank returns the selected weights
  if (group && config.syncBatchNorm) synchronizeBatchNorm(undefined, model); // the group ends with the run
  if (ema) model.dispose();
  optimizer.dispose();
  evaluated.eval();
  return {
    model: evaluated,
    objective,
    bestEpoch: state.bestEpoch,
    epochsRun: state.epochsDone,
    seconds: (performance.now() - started) / 1000,
  };
}
