import { expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { Adam } from '../../src/optim/index.js';
import { crossEntropy, makeMlp } from './mlp.js';

it('an MLP made of raw tensors learns XOR with Adam', () => {
  const x = torch.keep(torch.tensor([0, 0, 0, 1, 1, 0, 1, 1], [4, 2]));
  const y = torch.keep(torch.tensor(BigInt64Array.from([0n, 1n, 1n, 0n])));
  const mlp = makeMlp(2, 8, 2, 0);
  const optimizer = new Adam(mlp.params, { lr: 0.05 });
  const lossAt = (): number => torch.tidy(() => crossEntropy(mlp.forward(x), y).item());

  const initialLoss = lossAt();
  for (let step = 0; step < 300; step++) {
    torch.tidy(() => {
      optimizer.zeroGrad();
      crossEntropy(mlp.forward(x), y).backward();
      optimizer.step();
    });
  }
  expect(initialLoss).toBeGreaterThan(0.5);
  expect(lossAt()).toBeLessThan(0.02);
  expect(torch.tidy(() => mlp.forward(x).argmax(1).toArray())).toEqual([0, 1, 1, 0]);

  optimizer.dispose();
  mlp.dispose();
  x.dispose();
  y.dispose();
});
