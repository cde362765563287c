// Three steps of a small model WITH batch norm, alone on whole batches or as one rank of a
// data-parallel group on shards (imported by data-parallel.test.ts). Run as a script it is one rank
// with synchronized batch norm, which waits on the JavaScript thread (so two such ranks cannot
// share a process): it reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT and prints its state
// dict as JSON.
import { reduceGradients, shardOf, synchronizeBatchNorm } from '../../src/distributed/data-parallel.js';
import { rankFromEnvironment } from '../../src/distributed/environment.js';
import { ProcessGroup } from '../../src/distributed/process-group.js';
import { BatchNorm2d, Conv2d, GlobalAvgPool, Linear, ReLU, Sequential, seedInit } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';

/** Global batches of 7 (shards of 4 and 3 on two ranks: their shares matter) over 21 images. */
const BATCH = 7;
const STEPS = 3;

/** Trains the model for STEPS global batches and returns its state dict (parameters and running statistics). */
export async function trainWithBatchNorm(group: ProcessGroup | undefined, sync: boolean): Promise<Record<string, number[]>> {
  const data = new torch.Generator(5);
  const x = data.normal([BATCH * STEPS, 3, 5, 5], 0.5, 2);
  const y = data.uniform([BATCH * STEPS, 2], -1, 1);
  seedInit(3);
  // No bias before batch norm (as in our models): its true gradient is 0, and Adam would turn rounding noise into full steps.
  const model = new Sequential(new Conv2d(3, 4, 3, { bias: false }), new BatchNorm2d(4), ReLU(), GlobalAvgPool(), new Linear(4, 2));
  if (group && sync) synchronizeBatchNorm(group, model);
  const optimizer = new Adam(model.parameters(), { lr: 0.05 });
  model.train();
  for (let step = 0; step < STEPS; step++) {
    const batch = Int32Array.from({ length: BATCH }, (_, k) => step * BATCH + k);
    const shard = group ? shardOf(batch, group.rank, group.worldSize) : batch;
    torch.tidy(() => {
      const i = torch.tensor(shard, [shard.length], 'int64');
      const d = model.forward(x.indexSelect(0, i)).sub(y.indexSelect(0, i));
      optimizer.zeroGrad();
      d.mul(d)
        .mean()
        .mul(shard.length / batch.length)
        .backward();
    });
    if (group) await reduceGradients(group, model.parameters());
    optimizer.step();
  }
  return Object.fromEntries([...model.stateDict()].filter(([, t]) => t.dtype === 'float32').map(([name, t]) => [name, t.toArray()]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const group = await ProcessGroup.join(rankFromEnvironment(process.env, 20_000)!);
  const state = await trainWithBatchNorm(group, true);
  process.stdout.write(`${JSON.stringify(state)}\n`);
  group.destroy();
}
