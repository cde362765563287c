// `train --init RUN`: the model starts from a finished run's selected weights instead of a random
// initialization (transfer learning, e.g. from RetinaMNIST to a clinic's photographs).
import { UserError } from '../errors.js';
import { loadSafetensors } from '../io/safetensors.js';
import { WEIGHTS_METADATA } from '../model/open-run.js';
import { RunDir } from '../model/run-dir.js';
import type { Module } from '../nn/index.js';

export function initFromRun(model: Module, path: string): void {
  const run = new RunDir(path);
  if (!run.has('best')) throw new UserError(`--init ${path}: not a finished run (${run.file('best')} is missing)`);
  const weights = loadSafetensors(run.file('best'));
  try {
    const members = weights.metadata[WEIGHTS_METADATA.ensemble];
    if (members !== undefined) {
      throw new UserError(`--init ${path} is an ensemble of ${members} models: start from one member, e.g. --init ${run.member(0).path}`);
    }
    try {
      model.loadStateDict(weights.tensors);
    } catch (error) {
      throw new UserError(
        `--init ${path}: its weights do not fit this model (${(error as Error).message}); use the run's --model, --width and --loss`,
      );
    }
  } finally {
    for (const t of weights.tensors.values()) t.dispose();
  }
}
