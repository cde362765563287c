// Training a seed ensemble: the members one after another, each a complete run in members/<k>/
// (its own log, checkpoint and best weights, so --resume continues the member that was
// interrupted), then all of them saved as one model in the run's best.safetensors.
import { NUM_GRADES } from '../data/grades.js';
import type { RetinaTensors } from '../data/retinamnist.js';
import { saveSafetensors } from '../io/safetensors.js';
import { Ensemble } from '../model/ensemble.js';
import { evaluateSplit } from '../model/inference.js';
import { WEIGHTS_METADATA } from '../model/open-run.js';
import type { RunDir } from '../model/run-dir.js';
import type { MemberSummary } from '../model/run-metrics.js';
import { LogProbabilityObjective, createObjective, type FeatureClassifier } from '../nn/index.js';
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
  const { say = () => {} } = options;
  beginRun(run, config, options.resume);
  const members: FeatureClassifier[] = [];
  const summaries: MemberSummary[] = [];
  try {
    for (let k = 0; k < config.ensemble; k++) {
      const memberRun = run.member(k);
      memberRun.create();
      const memberConfig: RunConfig = { ...config, ensemble: 1, seed: memberSeed(config.seed, k, config.ensemble) };
      say(`ensemble member ${k + 1}/${config.ensemble} (seed ${memberConfig.seed})`);
      const trained = await trainModel(memberRun, memberConfig, data, {
        ...options,
        resume: options.resume && memberRun.has('config'),
        onEpoch: () => {
          run.writeMemberLog(config.ensemble);
          options.onEpoch?.();
        },
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
    }
  } catch (error) {
    for (const member of members) member.dispose(); // the finished members' weights are on disk
    throw error;
  }
  const ensemble = new Ensemble(members, createObjective(config.loss, NUM_GRADES));
  try {
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
