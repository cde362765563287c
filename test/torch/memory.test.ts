// A long scoped training loop must not grow the process: every temporary is freed by its scope,
// and the optimizer's state is allocated once.
//
// The loop yields to the event loop every YIELD_EVERY steps, as a real training loop does for
// progress output. It has to: Node runs the Node-API finalizers that delete the binding's
// per-handle C++ objects from the event loop, so a loop that never yields keeps every handle
// it made (~0.3 KB each even when disposed; the whole tensor when not) until it returns.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { Adam, clipGradNorm, cosineWarmupLr } from '../../src/optim/index.js';
import { crossEntropy, makeMlp } from './mlp.js';

const WARMUP_STEPS = 500;
const STEPS = 10_000;
const MAX_GROWTH_MB = 50;
const YIELD_EVERY = 100;

const gcIfExposed = (globalThis as { gc?: () => void }).gc ?? (() => {});
const rssMb = (): number => {
  gcIfExposed();
  return process.memoryUsage().rss / 2 ** 20;
};

it(`${STEPS} scoped Adam steps of a small MLP grow RSS by less than ${MAX_GROWTH_MB} MB`, { timeout: 180_000 }, async () => {
  const gen = new torch.Generator(3);
  const x = torch.keep(gen.normal([32, 16]));
  const y = torch.keep(gen.randint(0, 4, [32]));
  const mlp = makeMlp(16, 64, 4, 1);
  const optimizer = new Adam(mlp.params, { lr: 1e-3 });
  const schedule = cosineWarmupLr({ baseLr: 1e-3, totalSteps: STEPS, warmupSteps: WARMUP_STEPS });
  const trainStep = (step: number): number =>
    torch.tidy(() => {
      optimizer.lr = schedule(step);
      optimizer.zeroGrad();
      const loss = crossEntropy(mlp.forward(x), y);
      loss.backward();
      clipGradNorm(mlp.params, 5);
      optimizer.step();
      return loss.item();
    });

  const losses: number[] = [];
  let before = 0;
  for (let step = 0; step < STEPS; step++) {
    if (step === WARMUP_STEPS) before = rssMb();
    losses.push(trainStep(step));
    if (step % YIELD_EVERY === 0) await nextTurn();
  }
  await nextTurn();
  const growth = rssMb() - before;

  expect(losses.at(-1)).toBeLessThan(losses[0]! * 0.9); // it really trained
  expect(growth).toBeLessThan(MAX_GROWTH_MB);
  optimizer.dispose();
  mlp.dispose();
  x.dispose();
  y.dispose();
});
