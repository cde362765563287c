// Training a seed ensemble: the members one after another, each a complete run in members/<k>/
// (its own log, checkpoint and best weights, so --resume continues the member that was
// interrupted), then all of them saved as one model in the run's best.safetensors. With several
// ranks the members are spread over them (member k on rank k mod N, no gradient traffic): each
// rank writes its members' directories, then sends their weights to every rank, and rank 0 writes
// the ensemble's files.
import { NUM_GRADES } from '../data/grades.js';
import type { RetinaTensors } from '../data/retinamnist.js';
import { broadcastTensors } from '../distributed/data-parallel.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import { saveSafetensors } from '../io/safetensors.js';
import { Ensemble } from '../model/ensemble.js';
import { evaluateSplit } from '../model/inference.js';
import { WEIGHTS_METADATA } from '../model/open-run.js';
import type { RunDir } from '../model/run-dir.js';
import type { MemberSummary } from '../model/run-metrics.js';
import { LogProbabilityObjective, createModel, createObjective, type FeatureClassifier } from '../nn/index.js';
import { beginRun } from './checkpoint.js';
import { modelConfigOf, type RunConfig } from './config.js';
import { trainModel, type LoopOptions } from './loop.js';

/** Member k's seed: ensembles of different seeds share no member (seed s uses s*K ... s*K+K-1). */
export const memberSeed = (seed: number, k: number, members: number): number => seed * members + k;

export interface TrainedEnsemble {
  /** In eval mode; outputs log mean probabilities (read with `objective`). */
  model: Ensemble;
  objective: LogProbabilityObjective;
  members: MemberSummary[];
  bestEpoch: number[];
  epochsRun: number[];
  /** Summed over the members. */
  seconds: number;
}

export async function trainEnsemble(run: RunDir, config: RunConfig, data: RetinaTensors, options: LoopOptions): Promise<TrainedEnsemble> {
  const { say = () => {}, group } = options;
  const rank = group?.rank ?? 0;
  const worldSize = group?.worldSize ?? 1;
  if (rank === 0) beginRun(run, config, options.resume);
  await group?.barrier(); // a fresh run's directory is cleared before any rank writes a member
  const members: FeatureClassifier[] = [];
  const summaries: MemberSummary[] = [];
  try {
    for (let k = 0; k < config.ensemble; k++) {
      if (k % worldSize !== rank) continue;
      const memberRun = run.member(k);
      memberRun.create();
      const memberConfig: RunConfig = { ...config, ensemble: 1, seed: memberSeed(config.seed, k, config.ensemble) };
      say(`ensemble member ${k + 1}/${config.ensemble} (seed ${memberConfig.seed})`);
      const trained = await trainModel(memberRun, memberConfig, data, {
        ...options,
        group: undefined, // a member trains on its rank alone
        resume: options.resume && memberRun.has('config'),
        onEpoch: () => {
          if (rank === 0) run.writeMemberLog(config.ensemble);
          options.onEpoch?.();
        },
      });
      members[k] = trained.model;
      const val = evaluateSplit(trained.model, trained.objective, data.val).metrics;
      summaries[k] = {
        seed: memberConfig.seed,
        best_epoch: trained.bestEpoch,
        epochs_run: trained.epochsRun,
        seconds: trained.seconds,
        val: { acc: val.acc, auc: val.auc, qwk: val.qwk },
      };
    }
    if (group) await shareMembers(group, config, members, summaries);
  } catch (error) {
    for (const member of members) member?.dispose(); // the finished members' weights are on disk
    throw error;
  }
  if (group && rank === 0) run.writeMemberLog(config.ensemble); // with every rank's members done
  const ensemble = new Ensemble(members, createObjective(config.loss, NUM_GRADES));
  try {
    if (rank === 0)
      saveSafetensors(run.file('best'), ensemble.stateDict(), {
        [WEIGHTS_METADATA.model]: JSON.stringify(modelConfigOf(config)),
        [WEIGHTS_METADATA.objective]: config.loss.kind,
        [WEIGHTS_METADATA.ensemble]: String(config.ensemble),
      });
  } catch (error) {
    ensemble.dispose(); // frees the members it holds
    throw error;
  }
  return {
    model: ensemble,
    objective: new LogProbabilityObjective(NUM_GRADES),
    members: summaries,
    bestEpoch: summaries.map((m) => m.best_epoch),
    epochsRun: summaries.map((m) => m.epochs_run),
    seconds: summaries.reduce((sum, m) => sum + m.seconds, 0),
  };
}

/** Every rank gets every member: its weights (in eval mode) and summary, from the rank that trained it. */
async function shareMembers(
  group: ProcessGroup,
  config: RunConfig,
  members: FeatureClassifier[],
  summaries: MemberSummary[],
): Promise<void> {
  for (let k = 0; k < config.ensemble; k++) {
    const owner = k % group.worldSize;
    members[k] ??= createModel(modelConfigOf(config)).eval();
    await broadcastTensors(group, members[k].stateDict().values(), owner);
    summaries[k] = await group.broadcastJson(summaries[k], owner);
  }
}
