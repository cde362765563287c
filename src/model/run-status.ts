// Whether a run directory holds a finished run, and where an unfinished one stands. A single
// model's best.safetensors exists from its first epoch on, so "finished" is read from what only
// the end of training leaves: metrics.json, or a checkpoint whose loop has run all its epochs
// (or stopped early), which is how an ensemble's finished members are told from the one in training.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import { CHECKPOINT_STATE_KEY, MEMBERS_DIR, RUN_FILES, type RunDir } from './run-dir.js';

export interface RunStatus {
  finished: boolean;
  /** Where the run stands, e.g. "3 of 30 epochs done" or "member 2 of 5: 3 of 30 epochs done". */
  progress: string;
  /** The directory `train --out DIR --resume` continues: an ensemble's, for one of its members. */
  resumeDir: string;
}

/** The status of the run in `run`, or undefined when it holds no run configuration (weights only). */
export function runStatus(run: RunDir): RunStatus | undefined {
  if (!run.has('config')) return undefined;
  const config = run.readJson<{ epochs?: unknown; ensemble?: unknown } | null>('config');
  if (typeof config?.epochs !== 'number') return undefined; // not a training run's config.json
  const parent = dirname(dirname(run.path));
  const isMember = basename(dirname(run.path)) === MEMBERS_DIR && existsSync(join(parent, RUN_FILES.config));
  const resumeDir = isMember ? parent : run.path;
  if (run.has('metrics')) return { finished: true, progress: 'finished', resumeDir };
  const members = typeof config.ensemble === 'number' ? config.ensemble : 1;
  if (members > 1) {
    let k = 0; // the member in training: the last one begun
    while (k < members - 1 && run.member(k + 1).has('config')) k++;
    const member = runStatus(run.member(k));
    return { finished: false, progress: `member ${k + 1} of ${members}: ${member?.progress ?? 'not begun'}`, resumeDir };
  }
  const state = run.has('checkpoint') ? loopState(run) : undefined;
  const epochsDone = state?.epochsDone ?? 0;
  const finished = state !== undefined && (state.stopped || epochsDone >= config.epochs);
  const progress = `${epochsDone} of ${config.epochs} epochs done${state?.stopped ? ', stopped early' : ''}`;
  return { finished, progress, resumeDir };
}

function loopState(run: RunDir): { epochsDone: number; stopped: boolean } | undefined {
  const json = readSafetensorsMetadata(run.file('checkpoint'))[CHECKPOINT_STATE_KEY];
  return json === undefined ? undefined : (JSON.parse(json) as { epochsDone: number; stopped: boolean });
}
