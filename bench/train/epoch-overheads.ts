// What an epoch of the default recipe costs besides its training steps, at one thread: the
// validation pass that selects the best epoch and the checkpoint written for --resume (with its
// fsyncs). Wall and CPU milliseconds per call, means over --calls calls.
//
//   MEDMNIST_DIR=../shared/data npx tsx bench/train/epoch-overheads.ts [--calls 20]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NUM_GRADES } from '../../src/data/grades.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { evaluateSplit } from '../../src/model/inference.js';
import { RunDir } from '../../src/model/run-dir.js';
import { createModel, createObjective } from '../../src/nn/index.js';
import { createOptimizer } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { FRESH_STATE, beginRun, saveCheckpoint } from '../../src/train/checkpoint.js';
import { RunConfigSchema, modelConfigOf } from '../../src/train/config.js';
import { fmt, intArg, parseArgs, runMain } from '../common.js';

/** Mean wall and CPU milliseconds of `work` over `calls` calls. */
function timed(calls: number, work: () => void): string {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < calls; i++) work();
  const cpu = process.cpuUsage(cpu0);
  return `${fmt((performance.now() - start) / calls)} ms wall, ${fmt((cpu.user + cpu.system) / 1000 / calls)} ms CPU`;
}

async function main(): Promise<void> {
  const calls = intArg(parseArgs(process.argv.slice(2)), 'calls', 20);
  torch.setNumThreads(1);
  const config = RunConfigSchema.parse({ ensemble: 1 });
  const data = loadRetinaTensors({ size: config.size });
  const objective = createObjective(config.loss, NUM_GRADES);
  const model = createModel(modelConfigOf(config)).eval();
  const optimizer = createOptimizer(config.optimizer, model.parameters());
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-overheads-'));
  try {
    const run = new RunDir(join(work, 'run'));
    run.create();
    beginRun(run, config, false);
    const lines = [
      `Per-epoch work besides the steps, the default recipe's CompactCnn @${config.size}, 1 thread, ${calls} calls; ` +
        `load ${fmt(loadavg()[0]!, 2)}`,
      `validation pass (${data.val.count} images): ${timed(calls, () => evaluateSplit(model, objective, data.val))}`,
      `checkpoint write: ${timed(calls, () => saveCheckpoint(run, { model, ema: undefined, optimizer }, { ...FRESH_STATE }))}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runMain(main);
