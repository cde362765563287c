// `train`: the whole run. Decides what may happen to the --out folder, loads the data, trains a
// single model (loop.ts) or an ensemble (ensemble.ts), and writes the outputs (outputs.ts).
import { existsSync, rmSync } from 'node:fs';
import { checkTrainingSize } from '../data/prepared-dataset.js';
import type { ImageSize } from '../data/registry.js';
import { loadRetinaTensors } from '../data/retinamnist.js';
import { loadPreparedData, releaseTrainingData, type TrainingData } from '../data/training-data.js';
import type { ProcessGroup } from '../distributed/process-group.js';
import { UserError } from '../errors.js';
import { removeLeftoverTemporaries } from '../io/atomic.js';
import { RUN_FILES, RunDir } from '../model/run-dir.js';
import { RunLock } from '../model/run-lock.js';
import type { RunMetrics } from '../model/run-metrics.js';
import * as torch from '../torch/index.js';
import { modelConfigOf, type RunConfig } from './config.js';
import { trainEnsemble } from './ensemble.js';
import { trainModel, type Progress } from './loop.js';
import { writeRunOutputs } from './outputs.js';
import { writeReport } from '../report/report.js';

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
  /** Train data-parallel with these ranks: rank 0 alone writes `outDir`, and every rank returns its metrics. */
  group?: ProcessGroup;
}

/** Refuses to resume nothing, and to write over a run or a run's files without --overwrite. */
function checkOutDir(run: RunDir, options: TrainOptions): void {
  if (options.resume && !run.has('config')) {
    throw new UserError(`nothing to resume in ${options.outDir}: it holds no run (no ${RUN_FILES.config})`);
  }
  if (options.resume || options.overwrite) return;
  if (run.has('config')) {
    throw new UserError(
      `${options.outDir} already holds a run: continue it with --resume, replace it with --overwrite, or choose another --out`,
    );
  }
  const strayFiles = run.runFilesPresent();
  if (strayFiles.length > 0) {
    throw new UserError(
      `${options.outDir} holds files a run would replace (${strayFiles.join(', ')}): choose another --out, or pass --overwrite`,
    );
  }
}

export async function train(options: TrainOptions): Promise<{ runDir: RunDir; metrics: RunMetrics }> {
  const { config, group } = options;
  if (config.threads) torch.setNumThreads(config.threads);
  const run = new RunDir(options.outDir);
  const writes = (group?.rank ?? 0) === 0; // rank 0 alone writes the run directory and holds its lock
  // Refused before the folder is made, and again under the lock (another process may have begun).
  if (writes) checkOutDir(run, options);
  // Missing or unreadable data: nothing made yet.
  const data: TrainingData = config.data
    ? loadPreparedData(config.data, config.size)
    : loadRetinaTensors({ dataDir: options.dataDir, size: config.size as ImageSize });
  // Preparing the splits freed large blocks of sizes training will not ask for: give them back.
  torch.emptyCpuCache();
  try {
    if (config.data) checkTrainingSize(config.data, data.source.size, config.size);
    if (!writes) return await trainWith(run, data, options);
    const existedBefore = existsSync(options.outDir);
    run.create();
    const lock = RunLock.acquire(run.path);
    try {
      checkOutDir(run, options);
      removeLeftoverTemporaries(run.path);
      return await trainWith(run, data, options);
    } catch (error) {
      discardUnstarted(options.outDir, existedBefore); // under the lock: the folder is this run's
      throw error;
    } finally {
      lock.release();
    }
  } finally {
    releaseTrainingData(data);
  }
}

/**
 * Removes the folder a train() made while no epoch is logged in it (a failure or a stop before
 * there was anything to resume). Returns whether it did.
 */
export function discardUnstarted(outDir: string, existedBefore: boolean): boolean {
  if (existedBefore || !existsSync(outDir) || new RunDir(outDir).has('log')) return false;
  rmSync(outDir, { recursive: true, force: true });
  return true;
}

/** Trains in `run` and, on rank 0, writes the outputs and the report; every rank returns the metrics. */
async function trainWith(run: RunDir, data: TrainingData, options: TrainOptions): Promise<{ runDir: RunDir; metrics: RunMetrics }> {
  const { config, group, say = () => {} } = options;
  const writes = (group?.rank ?? 0) === 0;
  if (data.source.prepared) say(`prepared dataset ${data.source.prepared.name}: ${data.source.size}x${data.source.size}, read in batches`);
  if (data.source.upsampled_from)
    say(`images upsampled from ${data.source.upsampled_from}x${data.source.upsampled_from} to ${config.size}x${config.size} (bilinear)`);
  const loopOptions = { ...options, resume: Boolean(options.resume) };
  const trained =
    config.ensemble === 1 ? await trainModel(run, config, data, loopOptions) : await trainEnsemble(run, config, data, loopOptions);
  try {
    const { model, objective, ...summary } = trained;
    const written = writes
      ? writeRunOutputs(run, model, objective, data, { ...summary, config, modelConfig: modelConfigOf(config) })
      : undefined;
    if (writes) await writeReport(run.path, data.test);
    const metrics = group ? await group.broadcastJson(written) : written!;
    return { runDir: run, metrics };
  } finally {
    trained.model.dispose();
  }
}
