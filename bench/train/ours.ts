// One timed training epoch in our stack (run as a child process by run.ts), with the trainer's
// own pieces and the steps of its loop (src/train/loop.ts): shuffle sampler, takeBatch (rows of
// uint8 pixels converted to float), batched datasheet augmentation, ResNet-18 (or --arch cnn),
// cross-entropy, AdamW. The data are synthetic uint8 28x28 RGB images, upsampled once when
// --size > 28 and kept as uint8 at that size: what the peer holds, and what loadRetinaTensors holds
// when the file at that size is there (with only the 28 px file it holds 28 px and resizes each
// batch). Prints one JSON line.
//
//   node --import tsx bench/train/ours.ts --size 28 [--arch resnet18|cnn] [--n 1080] [--batch 128] [--warmup 2]
//        [--threads 2] [--seed 0] [--no-yield]
//
// Like the trainer, each step ends with an event-loop turn (await setImmediate) so Node runs the
// deferred finalizers of disposed tensor handles; --no-yield runs the loop synchronously.
import { setImmediate as turnEventLoop } from 'node:timers/promises';
import { NUM_GRADES } from '../../src/data/grades.js';
import * as torch from '../../src/torch/index.js';
import { createModel, seedInit } from '../../src/nn/index.js';
import { augment, datasheetAugment } from '../../src/data/augment/index.js';
import { pixelTensor, resizeBatch } from '../../src/data/preprocess.js';
import type { SplitTensors } from '../../src/data/retinamnist.js';
import { takeBatch } from '../../src/data/training-data.js';
import { ShuffleSampler } from '../../src/data/sampler.js';
import { createObjective } from '../../src/nn/index.js';
import { createOptimizer } from '../../src/optim/index.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { intArg, parseArgs, peakRssMiB } from '../common.js';
import { markMemory, memorySince } from '../memory-counters.js';

const SOURCE_SIZE = 28;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const size = intArg(args, 'size', 28);
  const n = intArg(args, 'n', 1080);
  const batchSize = intArg(args, 'batch', 128);
  const warmup = intArg(args, 'warmup', 2);
  const threads = intArg(args, 'threads', 2);
  const seed = intArg(args, 'seed', 0);
  const yieldEach = !args.has('no-yield');
  const arch = args.get('arch') ?? 'resnet18';
  if (arch !== 'resnet18' && arch !== 'cnn') throw new Error(`--arch must be resnet18 or cnn, got '${arch}'`);
  torch.setNumThreads(threads);

  // The run config the CLI would build for this recipe (its augmentation is replaced by the
  // datasheet's five transforms at full strength: `datasheetAugment`).
  const config = RunConfigSchema.parse({
    size,
    model: { name: arch },
    loss: { kind: 'ce' },
    optimizer: { name: 'adamw', lr: 1e-3, weightDecay: 1e-4 },
    batchSize,
    seed,
  });
  // Synthetic data: random uint8 NHWC images and labels, then the dataset's preprocessing.
  const gen = new torch.Generator(seed + 1);
  const images = torch.tidy(() => gen.randint(0, 256, [n, SOURCE_SIZE, SOURCE_SIZE, 3]).to('uint8').data() as Uint8Array);
  const labels = torch.tidy(() => gen.randint(0, NUM_GRADES, [n]).data() as BigInt64Array);
  const prepStart = performance.now();
  const pixels = torch.keep(
    torch.tidy(() => {
      const source = pixelTensor(images, n, SOURCE_SIZE, 3);
      if (size === SOURCE_SIZE) return source;
      const resized = resizeBatch(source.permute([0, 3, 1, 2]).to('float32'), size);
      return resized.round().clamp(0, 255).permute([0, 2, 3, 1]).contiguous().to('uint8');
    }),
  );
  const grades = Uint8Array.from(labels, Number);
  const train: SplitTensors = { pixels, size, y: torch.tensor(labels, [n], 'int64'), labels: grades, count: n };
  const prepSeconds = (performance.now() - prepStart) / 1000;
  torch.emptyCpuCache(); // as train() does once the data are loaded

  seedInit(seed);
  torch.manualSeed(seed);
  const objective = createObjective(config.loss, NUM_GRADES);
  const model = createModel({ ...config.model, inputSize: size, inChannels: 3, numClasses: NUM_GRADES, outputs: objective.outputs });
  const optimizer = createOptimizer(config.optimizer, model.parameters());
  const sampler = new ShuffleSampler(n);
  model.train();

  let dataSeconds = 0;
  /** The body of the trainer's step loop; returns the batch loss. */
  const step = (batchIndex: Int32Array, generator: torch.Generator): number =>
    torch.tidy(() => {
      const t0 = performance.now();
      const batch = takeBatch(train, batchIndex);
      const x = augment(batch.x, datasheetAugment, generator);
      batch.x.dispose(); // as the trainer's loop does
      dataSeconds += (performance.now() - t0) / 1000;
      const out = objective.loss(model.forward(x), batch.y);
      optimizer.zeroGrad();
      out.backward();
      optimizer.step();
      return out.item();
    });

  // Warm-up steps (first-call costs: oneDNN primitives, allocator), not timed.
  const warmGen = new torch.Generator(seed + 2);
  const warmOrder = sampler.epoch(warmGen);
  for (let s = 0; s < warmup; s++) {
    step(warmOrder.slice(s * batchSize, (s + 1) * batchSize), warmGen);
    if (yieldEach) await turnEventLoop();
  }
  dataSeconds = 0;

  // One timed epoch.
  const memory0 = markMemory();
  const cpu0 = process.cpuUsage();
  const epochStart = performance.now();
  const generator = new torch.Generator(seed + 3);
  const order = sampler.epoch(generator);
  const stepsPerEpoch = Math.ceil(order.length / batchSize);
  let lossSum = 0;
  let yieldSeconds = 0;
  for (let s = 0; s < stepsPerEpoch; s++) {
    const batchIndex = order.slice(s * batchSize, (s + 1) * batchSize);
    if (batchIndex.length < 2) continue;
    lossSum += step(batchIndex, generator) * batchIndex.length;
    if (yieldEach) {
      const y0 = performance.now();
      await turnEventLoop();
      yieldSeconds += (performance.now() - y0) / 1000;
    }
  }
  const epochSeconds = (performance.now() - epochStart) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const memory = memorySince(memory0);

  process.stdout.write(
    `${JSON.stringify({
      side: 'ours',
      arch,
      yieldEachStep: yieldEach,
      engine: `libtorch ${torch.libtorchVersion()} via Node-API, node ${process.version}`,
      size,
      n,
      batchSize,
      steps: stepsPerEpoch,
      threads: torch.getNumThreads(),
      epochSeconds,
      dataSeconds,
      yieldSeconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      prepSeconds,
      meanLoss: lossSum / n,
      peakRssMiB: peakRssMiB(),
      ...memory,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
