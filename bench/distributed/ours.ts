// One rank of the data-parallel benchmark in our stack (run as a child process by run.ts): the
// trainer's data-parallel step (src/train/loop.ts) on ResNet-18 with synthetic data: the rank's
// shard of each global batch (shardOf), forward, cross-entropy, backward, the flat gradient
// allreduce (reduceGradients), AdamW's step, an event-loop turn. Alone (no RANK in the environment)
// it is the one-process step without the allreduce. Each rank prints one JSON line.
//
//   RANK=r WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=p \
//   node --import tsx bench/distributed/ours.ts --size 28 [--n 1080] [--batch 128] [--warmup 2] [--threads 1]
//
// Besides the epoch it times the gradient allreduce inside each step (flatten, allreduce, copy
// back: what the step waits for) and, after the epoch, the allreduce alone of one flat buffer of
// the model's parameter count.
import { setImmediate as turnEventLoop } from 'node:timers/promises';
import { NUM_GRADES } from '../../src/data/grades.js';
import { ShuffleSampler } from '../../src/data/sampler.js';
import { reduceGradients, shardOf } from '../../src/distributed/data-parallel.js';
import { rankFromEnvironment } from '../../src/distributed/environment.js';
import { ProcessGroup } from '../../src/distributed/process-group.js';
import { LossConfigSchema, ModelConfigSchema, createModel, createObjective, seedInit } from '../../src/nn/index.js';
import { OptimizerConfigSchema, createOptimizer } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { intArg, median, parseArgs, peakRssMiB } from '../common.js';
import { timeAllreduce } from './allreduce.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const size = intArg(args, 'size', 28);
  const n = intArg(args, 'n', 1080);
  const batchSize = intArg(args, 'batch', 128);
  const warmup = intArg(args, 'warmup', 2);
  const threads = intArg(args, 'threads', 1);
  const seed = intArg(args, 'seed', 0);
  torch.setNumThreads(threads);
  const launched = rankFromEnvironment(process.env, 120_000);
  const group = launched && launched.worldSize > 1 ? await ProcessGroup.join(launched) : undefined;
  const rank = group?.rank ?? 0;
  const worldSize = group?.worldSize ?? 1;

  // The same synthetic data on every rank: N(0,1) images and random grades.
  const data = new torch.Generator(seed + 1);
  const trainX = torch.keep(data.normal([n, 3, size, size]));
  const trainY = torch.keep(data.randint(0, NUM_GRADES, [n]));
  seedInit(seed); // the same initial weights on every rank, as the trainer's broadcast from rank 0 gives
  const objective = createObjective(LossConfigSchema.parse({ kind: 'ce' }), NUM_GRADES);
  const model = createModel(
    ModelConfigSchema.parse({ name: 'resnet18', inputSize: size, inChannels: 3, numClasses: NUM_GRADES, outputs: objective.outputs }),
  );
  const optimizer = createOptimizer(OptimizerConfigSchema.parse({ name: 'adamw', lr: 1e-3, weightDecay: 1e-4 }), model.parameters());
  const sampler = new ShuffleSampler(n);
  model.train();

  let reduceSeconds = 0;
  const step = async (globalBatch: Int32Array): Promise<number> => {
    const batchIndex = group ? shardOf(globalBatch, rank, worldSize) : globalBatch;
    const loss = torch.tidy(() => {
      const index = torch.tensor(batchIndex, [batchIndex.length], 'int64');
      const out = objective.loss(model.forward(trainX.indexSelect(0, index)), trainY.indexSelect(0, index));
      optimizer.zeroGrad();
      (group ? out.mul(batchIndex.length / globalBatch.length) : out).backward();
      return out.item();
    });
    if (group) {
      const t0 = performance.now();
      await reduceGradients(group, model.parameters());
      reduceSeconds += (performance.now() - t0) / 1000;
    }
    optimizer.step();
    await turnEventLoop();
    return loss;
  };

  const warmOrder = sampler.epoch(new torch.Generator(seed + 2));
  for (let s = 0; s < warmup; s++) await step(warmOrder.slice(s * batchSize, (s + 1) * batchSize));
  reduceSeconds = 0;

  await group?.barrier();
  const cpu0 = process.cpuUsage();
  const epochStart = performance.now();
  const order = sampler.epoch(new torch.Generator(seed + 3));
  const steps = Math.ceil(n / batchSize);
  let lossSum = 0;
  for (let s = 0; s < steps; s++) {
    const globalBatch = order.slice(s * batchSize, (s + 1) * batchSize);
    if (Math.floor(globalBatch.length / worldSize) < 2) continue; // batch norm needs two images per rank
    lossSum += (await step(globalBatch)) * globalBatch.length;
  }
  const epochSeconds = (performance.now() - epochStart) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const parameters = model.parameters().reduce((sum, p) => sum + p.numel, 0);
  const allreduceAlone = group ? await timeAllreduce(group, parameters, 5) : [];

  process.stdout.write(
    `${JSON.stringify({
      side: 'ours',
      rank,
      engine: `libtorch ${torch.libtorchVersion()} via Node-API, node ${process.version}`,
      size,
      n,
      batchSize,
      worldSize,
      steps,
      threads: torch.getNumThreads(),
      parameters,
      epochSeconds,
      reduceSecondsPerStep: group ? reduceSeconds / steps : 0,
      allreduceAloneSeconds: group ? median(allreduceAlone) : 0,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      meanLoss: lossSum / n,
      peakRssMiB: peakRssMiB(),
    })}\n`,
  );
  group?.destroy();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
