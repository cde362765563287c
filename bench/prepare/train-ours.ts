// A bounded number of training steps of ResNet-18 on a prepared dataset, on the path `train --data`
// takes (run as a child process by train.ts): the shuffle sampler over the training split,
// `takeBatch` (positioned reads of the batch's rows into one reused buffer), the default recipe's
// batched augmentation, forward, cross-entropy, backward, AdamW. Prints one JSON line.
//
//   node --import tsx bench/prepare/train-ours.ts --data DIR --size 224 [--batch 32] [--steps 4]
//        [--warmup 1] [--threads 2] [--seed 0]
import { setImmediate as turnEventLoop } from 'node:timers/promises';
import { augment } from '../../src/data/augment/index.js';
import { NUM_GRADES } from '../../src/data/grades.js';
import { ShuffleSampler } from '../../src/data/sampler.js';
import { loadPreparedData, releaseTrainingData, takeBatch } from '../../src/data/training-data.js';
import { createModel, createObjective, seedInit } from '../../src/nn/index.js';
import { createOptimizer } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { intArg, parseArgs, peakRssMiB } from '../common.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = args.get('data');
  if (!dir) throw new Error('--data DIR is required');
  const size = intArg(args, 'size', 224);
  const batchSize = intArg(args, 'batch', 32);
  const steps = intArg(args, 'steps', 4);
  const warmup = intArg(args, 'warmup', 1);
  const seed = intArg(args, 'seed', 0);
  torch.setNumThreads(intArg(args, 'threads', 2));

  // The configuration `train --data DIR --arch resnet18 --size S --batch-size B` resolves to.
  const config = RunConfigSchema.parse({ data: dir, size, model: { name: 'resnet18' }, batchSize, seed });
  const data = loadPreparedData(dir, size);
  seedInit(seed);
  torch.manualSeed(seed);
  const objective = createObjective(config.loss, NUM_GRADES);
  const model = createModel({ ...config.model, inputSize: size, inChannels: 3, numClasses: NUM_GRADES, outputs: objective.outputs });
  const optimizer = createOptimizer(config.optimizer, model.parameters());
  model.train();
  const generator = new torch.Generator(seed + 1);
  const order = new ShuffleSampler(data.train.count).epoch(generator);
  if ((warmup + steps) * batchSize > order.length) throw new Error(`${warmup + steps} steps of ${batchSize} exceed the training split`);

  let dataSeconds = 0;
  const step = (batchIndex: Int32Array): number =>
    torch.tidy(() => {
      const t0 = performance.now();
      const batch = takeBatch(data.train, batchIndex);
      const x = config.augment ? augment(batch.x, config.augment, generator) : batch.x;
      if (x !== batch.x) batch.x.dispose(); // as the trainer's loop does
      dataSeconds += (performance.now() - t0) / 1000;
      const out = objective.loss(model.forward(x), batch.y);
      optimizer.zeroGrad();
      out.backward();
      optimizer.step();
      return out.item();
    });

  for (let s = 0; s < warmup; s++) {
    step(order.slice(s * batchSize, (s + 1) * batchSize));
    await turnEventLoop();
  }
  dataSeconds = 0;
  const started = performance.now();
  for (let s = warmup; s < warmup + steps; s++) {
    step(order.slice(s * batchSize, (s + 1) * batchSize));
    await turnEventLoop(); // as the trainer does: Node frees disposed tensor handles here
  }
  const seconds = (performance.now() - started) / 1000;
  releaseTrainingData(data);
  process.stdout.write(
    `${JSON.stringify({
      side: 'ours',
      rows: data.train.count + data.val.count + data.test.count,
      size,
      batchSize,
      steps,
      threads: torch.getNumThreads(),
      seconds,
      dataSeconds,
      imagesPerSecond: (steps * batchSize) / seconds,
      peakRssMiB: peakRssMiB(),
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
