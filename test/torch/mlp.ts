// A two-layer perceptron built from raw tensors (no src/nn), for the learning and memory tests.
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

export interface Mlp {
  params: Tensor[];
  forward(x: Tensor): Tensor;
  dispose(): void;
}

/** Linear -> tanh -> linear, weights drawn from a seeded generator with PyTorch's 1/sqrt(fan_in) scale. */
export function makeMlp(inputs: number, hidden: number, outputs: number, seed: number): Mlp {
  const gen = new torch.Generator(seed);
  const layer = (fanIn: number, fanOut: number): Tensor[] => {
    const bound = 1 / Math.sqrt(fanIn);
    return [gen.uniform([fanOut, fanIn], -bound, bound), gen.uniform([fanOut], -bound, bound)];
  };
  const params = [...layer(inputs, hidden), ...layer(hidden, outputs)].map((p) => {
    torch.keep(p);
    p.requiresGrad = true;
    return p;
  });
  const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  return {
    params,
    forward: (x) => torch.linear(torch.linear(x, w1, b1).tanh(), w2, b2),
    dispose: () => params.forEach((p) => p.dispose()),
  };
}

/** Mean cross-entropy of logits [N, C] against int64 labels [N]. */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  return logits.logSoftmax(1).gather(1, labels.unsqueeze(1)).mean().neg();
}
