// One record of a training run in progress: model, EMA, optimizer and the loop's state, saved after
// every epoch as checkpoint.safetensors (the state in its metadata, so weights and state are one
// atomic file). Also the rules for starting a run directory and for resuming after a crash.
import { isDeepStrictEqual } from 'node:util';
import { UserError } from '../errors.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { WEIGHTS_METADATA } from '../model/open-run.js';
import { CHECKPOINT_STATE_KEY, type RunDir } from '../model/run-dir.js';
import { renameLegacyKeys, type Module } from '../nn/index.js';
import type { Optimizer } from '../optim/index.js';
import type { Tensor } from '../torch/index.js';
import { legacySavedConfigOf, savedConfigOf, type RunConfig } from './config.js';

export interface LoopState {
  epochsDone: number;
  bestEpoch: number;
  bestScore: number;
  optimizer: object;
  secondsSoFar: number;
  /** Early stopping ended the run: a resume goes straight to the final evaluation. */
  stopped: boolean;
  /** How the epochs so far were drawn and split (absent in checkpoints written before it was recorded). */
  sampler?: SamplerState;
}

/**
 * Where the sampler stands at a checkpoint. Epoch e's order comes from the seed and e alone (as
 * DistributedSampler's set_epoch), and each step takes the next `globalBatch` images of it, split
 * over the ranks: so a resume continues with epoch `nextEpoch` on any number of ranks.
 */
export interface SamplerState {
  kind: RunConfig['sampler'];
  seed: number;
  nextEpoch: number;
  globalBatch: number;
  /** The ranks that trained the epochs so far (informational: a resume may use another count). */
  worldSize: number;
}

export const FRESH_STATE: Readonly<LoopState> = {
  epochsDone: 0,
  bestEpoch: -1,
  bestScore: -Infinity,
  optimizer: {},
  secondsSoFar: 0,
  stopped: false,
};

/** What is being trained: the model, its EMA when enabled, and the optimizer over the model. */
export interface TrainedState {
  model: Module;
  ema: Module | undefined;
  optimizer: Optimizer;
}

/** JSON's view of a value: key order is not meaningful and undefined keys are dropped. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** Whether a config.json (as read) records `config`, in either form resume accepts; threads may differ. */
export function recordsConfig(saved: object, config: RunConfig): boolean {
  const previous = asJson({ ...saved, threads: undefined });
  return [savedConfigOf(config), legacySavedConfigOf(config)].some((form) => isDeepStrictEqual(previous, asJson(form)));
}

/**
 * Starts a run directory afresh (config written, old outputs removed), or, resuming, checks that
 * the run there has this configuration: a mismatch is refused before anything is removed.
 */
export function beginRun(run: RunDir, config: RunConfig, resume: boolean): void {
  if (resume) {
    if (!recordsConfig(run.readJson<object>('config'), config)) {
      throw new UserError(`cannot resume ${run.path}: its config.json differs from this run's configuration (resume with the same flags)`);
    }
  } else {
    run.clear(); // an --overwrite must not leave the old run's weights for a later --resume
    run.writeJson('config', savedConfigOf(config));
  }
}

export function saveCheckpoint(run: RunDir, { model, ema, optimizer }: TrainedState, state: LoopState): void {
  const optimizerState = optimizer.stateDict(); // copies, freed below
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of model.stateDict()) tensors.set(`model.${k}`, v);
  if (ema) for (const [k, v] of ema.stateDict()) tensors.set(`ema.${k}`, v);
  for (const [k, v] of optimizerState.tensors) tensors.set(`optimizer.${k}`, v);
  saveSafetensors(run.file('checkpoint'), tensors, {
    [CHECKPOINT_STATE_KEY]: JSON.stringify({ ...state, optimizer: optimizerState.meta }),
  });
  for (const t of optimizerState.tensors.values()) t.dispose();
}

/** Loads the checkpoint into `trained` and returns the loop state to continue from. */
export function resumeFrom(run: RunDir, { model, ema, optimizer }: TrainedState, config: RunConfig): LoopState {
  const checkpoint = loadSafetensors(run.file('checkpoint'));
  const saved = checkpoint.tensors;
  const state = JSON.parse(checkpoint.metadata[CHECKPOINT_STATE_KEY] ?? 'null') as LoopState | null;
  if (!state) throw new UserError(`${run.file('checkpoint')} has no training state: it is not a retinagrade checkpoint`);
  state.bestScore ??= -Infinity; // JSON stores -Infinity as null
  const { sampler } = state;
  if (sampler && (sampler.nextEpoch !== state.epochsDone || sampler.globalBatch !== config.batchSize)) {
    throw new UserError(
      `${run.file('checkpoint')}: its sampler stands at epoch ${sampler.nextEpoch} with global batches of ${sampler.globalBatch}, ` +
        `but the run has done ${state.epochsDone} epochs with --batch-size ${config.batchSize}: the checkpoint is not this run's`,
    );
  }
  const part = (prefix: string): Map<string, Tensor> =>
    new Map([...saved].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  model.loadStateDict(renameLegacyKeys(part('model.')));
  ema?.loadStateDict(renameLegacyKeys(part('ema.')));
  optimizer.loadStateDict({ tensors: part('optimizer.'), meta: state.optimizer });
  for (const t of saved.values()) t.dispose();
  run.truncateLog(state.epochsDone);
  // best.safetensors is written before the checkpoint: after an interruption between the two it
  // holds weights of the epoch about to be re-run, not of state.bestEpoch. That epoch's re-run
  // must then replace it whatever it scores, or the file and the selected epoch would disagree.
  if (run.has('best') && bestEpochOnDisk(run) > state.epochsDone) {
    state.bestScore = -Infinity;
    state.bestEpoch = -1; // kept even if it scores NaN (see the selection in the loop)
  }
  return state;
}

/** The epoch best.safetensors says it holds (0 for files written before it said so). */
function bestEpochOnDisk(run: RunDir): number {
  const best = loadSafetensors(run.file('best'));
  for (const t of best.tensors.values()) t.dispose();
  return Number(best.metadata[WEIGHTS_METADATA.epoch] ?? 0);
}
