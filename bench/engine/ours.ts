// One engine measurement in our stack (run as a child process by run.ts): training and inference
// throughput of one model on synthetic data, then the process's peak RSS. Prints one JSON line.
//
//   node --import tsx bench/engine/ours.ts --model resnet18 --size 28 [--batch 128]
//        [--warmup 2] [--steps 8] [--infer-warmup 1] [--infer-steps 8] [--threads 2] [--no-yield]
//        [--precision fp32|bf16] [--batch-range 16-64]
//
// --batch-range trains each step on a batch size drawn from that range (common.ts batchSizes,
// the peer draws the same ones) instead of --batch: the memory a step with varying shapes faults in.
//
// Like the trainer (src/train/loop.ts), every step ends by turning the event loop (await
// setImmediate), inside the timing, so Node runs the deferred finalizers of disposed tensor
// handles. --no-yield skips that: a synchronous loop, to show what it costs (bench/README.md).
import { setImmediate as turnEventLoop } from 'node:timers/promises';
import { NUM_GRADES } from '../../src/data/grades.js';
import * as torch from '../../src/torch/index.js';
import { createModel, seedInit } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import { CrossEntropy } from '../../src/nn/index.js';
import { batchSizes, intArg, parseArgs, peakRssMiB, rangeArg } from '../common.js';
import { markMemory, memorySince } from '../memory-counters.js';

interface Timing {
  wall: number;
  cpu: number;
}

/** Runs `fn` n times, each followed by an event-loop turn unless `yieldEach` is off; wall and CPU
 * (user + system, all threads) seconds of each run including its turn. */
async function repeat(n: number, yieldEach: boolean, fn: () => void): Promise<Timing[]> {
  const out: Timing[] = [];
  for (let i = 0; i < n; i++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    if (yieldEach) await turnEventLoop();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    out.push({ wall, cpu: (cpu.user + cpu.system) / 1e6 });
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const name = args.get('model') ?? 'resnet18';
  if (name !== 'resnet18' && name !== 'cnn') throw new Error(`--model must be resnet18 or cnn, got '${name}'`);
  const size = intArg(args, 'size', 28);
  const batch = intArg(args, 'batch', 128);
  const warmup = intArg(args, 'warmup', 2);
  const steps = intArg(args, 'steps', 8);
  const inferWarmup = intArg(args, 'infer-warmup', 1);
  const inferSteps = intArg(args, 'infer-steps', 8);
  const threads = intArg(args, 'threads', 2);
  const yieldEach = !args.has('no-yield');
  const batchRange = rangeArg(args, 'batch-range');
  const precision = args.get('precision') ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16, got '${precision}'`);
  torch.setNumThreads(threads);

  seedInit(0);
  torch.manualSeed(0);
  const model = createModel({
    name,
    inputSize: size,
    inChannels: 3,
    numClasses: NUM_GRADES,
    width: name === 'cnn' ? 32 : 64,
    dropout: 0,
    precision,
  });
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const objective = new CrossEntropy(NUM_GRADES);
  const gen = new torch.Generator(1);
  const rows = Math.max(batch, batchRange?.[1] ?? 0);
  const x = torch.keep(gen.normal([rows, 3, size, size]));
  const y = torch.keep(gen.randint(0, NUM_GRADES, [rows]));
  // Each training step's batch size: --batch, or the next one drawn from --batch-range.
  const trainBatches = batchRange ? batchSizes(batchRange[0], batchRange[1], warmup + steps) : Array(warmup + steps).fill(batch);
  let trainStepIndex = 0;

  // Training: the trainer's step (src/train/loop.ts) without augmentation or data loading.
  model.train();
  let lastLoss = 0;
  const optimizerSeconds: number[] = []; // each training step's optimizer.step()
  const trainStep = (): void => {
    const rowsNow = trainBatches[trainStepIndex++]!;
    lastLoss = torch.tidy(() => {
      const loss = objective.loss(model.forward(x.slice(0, 0, rowsNow)), y.slice(0, 0, rowsNow));
      optimizer.zeroGrad();
      loss.backward();
      const t0 = performance.now();
      optimizer.step();
      optimizerSeconds.push((performance.now() - t0) / 1000);
      return loss.item();
    });
  };
  await repeat(warmup, yieldEach, trainStep);
  const memory0 = markMemory();
  const train = await repeat(steps, yieldEach, trainStep);
  const trainMemory = memorySince(memory0);
  const rssAfterTrain = peakRssMiB();

  // Inference: eval mode, no autograd recording.
  model.eval();
  const inferStep = (): void => {
    torch.tidy(() =>
      torch.noGrad(() =>
        model
          .forward(x.slice(0, 0, batch))
          .sum()
          .item(),
      ),
    );
  };
  await repeat(inferWarmup, yieldEach, inferStep);
  const infer = await repeat(inferSteps, yieldEach, inferStep);

  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
  const trainImages = sum(trainBatches.slice(warmup));
  const rate = (runs: { wall: number }[], images: number): number | null => (runs.length ? images / sum(runs.map((r) => r.wall)) : null);
  const result = {
    side: 'ours',
    yieldEachStep: yieldEach,
    engine: `libtorch ${torch.libtorchVersion()} via Node-API, node ${process.version}`,
    model: name,
    size,
    precision,
    batch,
    threads: torch.getNumThreads(),
    params: model.parameterCount(),
    batchRange: batchRange ?? null,
    trainImgPerSec: rate(train, trainImages),
    inferImgPerSec: rate(infer, infer.length * batch),
    trainStepSeconds: train.map((r) => r.wall),
    optimizerStepSeconds: optimizerSeconds.slice(warmup),
    inferStepSeconds: infer.map((r) => r.wall),
    trainCpuSeconds: sum(train.map((r) => r.cpu)),
    inferCpuSeconds: sum(infer.map((r) => r.cpu)),
    lastLoss,
    peakRssAfterTrainMiB: rssAfterTrain,
    train: trainMemory,
    peakRssMiB: peakRssMiB(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
