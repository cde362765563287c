// One engine measurement in our stack (run as a child process by run.ts): training and inference
// throughput of one model on synthetic data, then the process's peak RSS. Prints one JSON line.
//
//   node --import tsx bench/engine/ours.ts --model resnet18 --size 28 [--batch 128]
//        [--warmup 2] [--steps 8] [--infer-warmup 1] [--infer-steps 8] [--threads 2]
import * as torch from '../../src/torch/index.js';
import { createModel, seedInit } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import { CrossEntropy } from '../../src/train/losses.js';
import { intArg, parseArgs, peakRssMiB } from '../common.js';

function main(): void {
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
  torch.setNumThreads(threads);

  seedInit(0);
  torch.manualSeed(0);
  const model = createModel({ name, inputSize: size, inChannels: 3, numClasses: 5, width: name === 'cnn' ? 32 : 64, dropout: 0 });
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const objective = new CrossEntropy(5);
  const gen = new torch.Generator(1);
  const x = torch.keep(gen.normal([batch, 3, size, size]));
  const y = torch.keep(gen.randint(0, 5, [batch]));

  // Training: the trainer's step (src/train/trainer.ts) without augmentation or data loading.
  model.train();
  const trainStep = (): number =>
    torch.tidy(() => {
      const loss = objective.loss(model.forward(x), y);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      return loss.item();
    });
  for (let i = 0; i < warmup; i++) trainStep();
  const trainTimes: number[] = [];
  let lastLoss = 0;
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    lastLoss = trainStep();
    trainTimes.push((performance.now() - t0) / 1000);
  }

  // Inference: eval mode, no autograd recording.
  model.eval();
  const inferStep = (): number => torch.tidy(() => torch.noGrad(() => model.forward(x).sum().item()));
  for (let i = 0; i < inferWarmup; i++) inferStep();
  const inferTimes: number[] = [];
  for (let i = 0; i < inferSteps; i++) {
    const t0 = performance.now();
    inferStep();
    inferTimes.push((performance.now() - t0) / 1000);
  }

  const total = (times: number[]): number => times.reduce((a, b) => a + b, 0);
  const result = {
    side: 'ours',
    engine: `libtorch ${torch.libtorchVersion()} via Node-API, node ${process.version}`,
    model: name,
    size,
    batch,
    threads: torch.getNumThreads(),
    params: model.parameterCount(),
    trainImgPerSec: steps > 0 ? (steps * batch) / total(trainTimes) : Number.NaN,
    inferImgPerSec: inferSteps > 0 ? (inferSteps * batch) / total(inferTimes) : Number.NaN,
    trainStepSeconds: trainTimes,
    inferStepSeconds: inferTimes,
    lastLoss,
    peakRssMiB: peakRssMiB(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main();
