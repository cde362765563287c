// ResNet-18's training compute per image at one input size (forward, cross-entropy, backward,
// AdamW's step on synthetic N(0,1) images), for the scale model (scale-model.ts): wall and CPU
// seconds (all threads). One untimed step, then --steps timed ones. Prints one JSON line.
//
//   node --import tsx bench/distributed/compute.ts --size 224 [--batch 4] [--steps 2] [--threads 2]
import { setImmediate as turnEventLoop } from 'node:timers/promises';
import { NUM_GRADES } from '../../src/data/grades.js';
import { LossConfigSchema, ModelConfigSchema, createModel, createObjective, seedInit } from '../../src/nn/index.js';
import { OptimizerConfigSchema, createOptimizer } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { intArg, parseArgs, runMain } from '../common.js';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const size = intArg(args, 'size', 224);
  const batch = intArg(args, 'batch', 4);
  const steps = intArg(args, 'steps', 2);
  torch.setNumThreads(intArg(args, 'threads', 2));
  seedInit(0);
  const objective = createObjective(LossConfigSchema.parse({ kind: 'ce' }), NUM_GRADES);
  const model = createModel(ModelConfigSchema.parse({ name: 'resnet18', inputSize: size, inChannels: 3, numClasses: NUM_GRADES }));
  const optimizer = createOptimizer(OptimizerConfigSchema.parse({ name: 'adamw', lr: 1e-3, weightDecay: 1e-4 }), model.parameters());
  const data = new torch.Generator(1);
  const x = torch.keep(data.normal([batch, 3, size, size]));
  const y = torch.keep(data.randint(0, NUM_GRADES, [batch]));
  model.train();
  const step = () =>
    torch.tidy(() => {
      const loss = objective.loss(model.forward(x), y);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
    });
  step();
  await turnEventLoop();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let s = 0; s < steps; s++) {
    step();
    await turnEventLoop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const images = steps * batch;
  const cpuSecondsPerImage = (cpu.user + cpu.system) / 1e6 / images;
  const threads = torch.getNumThreads();
  process.stdout.write(`${JSON.stringify({ size, batch, steps, threads, secondsPerImage: seconds / images, cpuSecondsPerImage })}\n`);
}

runMain(main);
