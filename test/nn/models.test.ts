import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData, takeBatch, takeRange } from '../../src/data/training-data.js';
import { Ensemble } from '../../src/model/ensemble.js';
import { predictProbabilities } from '../../src/model/inference.js';
import {
  BatchNorm2d,
  Conv2d,
  Linear,
  LossConfigSchema,
  ModelConfigSchema,
  Sequential,
  countMacs,
  createModel,
  createObjective,
  seedInit,
} from '../../src/nn/index.js';
import { AdamW } from '../../src/optim/index.js';

const model = (name: 'cnn' | 'resnet18' | 'resnet50', inputSize: number) =>
  createModel(ModelConfigSchema.parse({ name, inputSize, numClasses: 5 }));

describe('models', () => {
  it('ResNet-18 has torchvision parameter count with a 5-class head', () => {
    // torchvision resnet18(num_classes=5): 11,179,077 parameters (7x7 stem).
    expect(model('resnet18', 64).parameterCount()).toBe(11_179_077);
    // MedMNIST's 28x28 variant swaps the 7x7x3x64 stem for 3x3x3x64: 9408 - 1728 fewer.
    expect(model('resnet18', 28).parameterCount()).toBe(11_179_077 - 9408 + 1728);
  });

  it('ResNet-50 has torchvision parameter count with a 5-class head', () => {
    // torchvision resnet50(num_classes=5): 23,518,277 parameters.
    expect(model('resnet50', 224).parameterCount()).toBe(23_518_277);
  });

  it('state dict keys follow PyTorch naming, buffers included', () => {
    const keys = [...model('resnet18', 28).stateDict().keys()];
    expect(keys).toContain('layer2.0.downsample.0.weight');
    expect(keys).toContain('layer4.1.bn2.running_var');
    expect(keys).toContain('layer1.0.bn1.num_batches_tracked');
    expect(keys).toContain('stem.conv.weight');
    expect(keys).toContain('fc.bias');
    const cnnKeys = [...model('cnn', 28).stateDict().keys()];
    expect(cnnKeys.filter((k) => k.endsWith('.conv.weight'))).toEqual(
      ['stage1.0', 'stage1.1', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1'].map((block) => `${block}.conv.weight`),
    );
    expect(cnnKeys).toContain('stage3.1.bn.running_mean');
    expect(cnnKeys).toContain('fc.weight');
  });

  it('forward gives one logit per class and counts MACs of a known layer exactly', () => {
    // conv: 8 x 4 x 4 outputs, each 3*3*3 MACs; then a linear layer 8 -> 2 on each of the 8x4 rows.
    const net = new Sequential(new Conv2d(3, 8, 3, { padding: 1 }), new Linear(4, 2));
    expect(countMacs(net, [3, 4, 4])).toBe(8 * 4 * 4 * 27 + 8 * 4 * 2 * 4);
    const y = torch.tidy(() => model('cnn', 28).forward(torch.zeros([2, 3, 28, 28])));
    expect(y.shape).toEqual([2, 5]);
  });

  it('loadStateDict refuses missing, unexpected and mis-shaped entries with their names', () => {
    const a = model('cnn', 28);
    const state = new Map(a.stateDict());
    const [firstKey] = state.keys();
    const missing = new Map(state);
    missing.delete(firstKey!);
    expect(() => a.loadStateDict(missing)).toThrow(`missing ${firstKey}`);
    expect(() => a.loadStateDict(new Map([...state, ['extra.weight', torch.zeros([1])]]))).toThrow('unexpected extra.weight');
    const wrong = new Map(state);
    wrong.set(firstKey!, torch.zeros([1, 2, 3]));
    expect(() => a.loadStateDict(wrong)).toThrow(`'${firstKey}' is float32[1,2,3]`);
  });

  it('same seed builds the same weights', () => {
    seedInit(7);
    const a = model('cnn', 28).stateDict().get('stage1.0.conv.weight')!.toArray();
    seedInit(7);
    const b = model('cnn', 28).stateDict().get('stage1.0.conv.weight')!.toArray();
    expect(a).toEqual(b);
  });

  it('batch norm updates running statistics in training and uses them in eval', () => {
    const bn = new BatchNorm2d(2);
    const x = torch.tensor([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]);
    bn.forward(x);
    // running_mean = 0.9 * 0 + 0.1 * batch mean (2.5, 25)
    expect(bn.runningMean.toArray().map((v) => +v.toFixed(5))).toEqual([0.25, 2.5]);
    bn.eval();
    const y = bn.forward(x).toArray();
    expect(y[0]).toBeCloseTo((1 - 0.25) / Math.sqrt(bn.runningVar.toArray()[0]! + 1e-5), 4);
  });

  it('the compact CNN overfits 64 random images to 100% training accuracy', () => {
    seedInit(0);
    const gen = new torch.Generator(0);
    const x = torch.keep(gen.normal([64, 3, 28, 28]));
    const y = torch.keep(gen.randint(0, 5, [64]));
    const net = createModel(ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 16, numClasses: 5 }));
    const optimizer = new AdamW(net.parameters(), { lr: 3e-3, weightDecay: 0 });
    for (let step = 0; step < 150; step++) {
      torch.tidy(() => {
        const loss = net.forward(x).logSoftmax(1).gather(1, y.unsqueeze(1)).mean().neg();
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
      });
    }
    net.eval();
    const accuracy = torch.tidy(() => net.forward(x).argmax(1).eq(y).float().mean().item());
    expect(accuracy).toBe(1);
  });
});

describe('bf16 precision (autocast around features and head)', () => {
  const config = (name: 'cnn' | 'resnet18', inputSize: number, precision: 'fp32' | 'bf16') =>
    ModelConfigSchema.parse({ name, inputSize, numClasses: 5, width: 8, precision });

  it.each([
    ['cnn', 28],
    ['resnet18', 64],
  ] as const)('a %s step at %i px in bf16 moves every fp32 weight and running statistic and stays finite', (name, size) => {
    seedInit(3);
    const net = createModel(config(name, size, 'bf16'));
    const before = new Map([...net.stateDict()].map(([key, t]) => [key, t.clone()]));
    const optimizer = new AdamW(net.parameters(), { lr: 1e-2, weightDecay: 0 });
    const gen = new torch.Generator(5);
    const x = gen.normal([8, 3, size, size]);
    const y = gen.uniform([8]).mul(5).floor().to('int64');
    torch.tidy(() => {
      const logits = net.forward(x);
      expect(logits.dtype).toBe('float32'); // the loss sees float32 logits
      const loss = logits.logSoftmax(1).gather(1, y.unsqueeze(1)).mean().neg();
      optimizer.zeroGrad();
      loss.backward();
      for (const p of net.parameters()) expect(p.grad?.dtype).toBe('float32');
      optimizer.step();
    });
    for (const [key, t] of net.stateDict()) {
      if (key.endsWith('num_batches_tracked')) continue;
      expect(t.dtype, key).toBe('float32');
      const values = t.data() as Float32Array;
      expect(values.every(Number.isFinite), key).toBe(true);
      expect(t.sub(before.get(key)!).abs().max().item(), key).toBeGreaterThan(0);
    }
  });

  it('grades RetinaMNIST like fp32 once trained a little: same grade for nearly every image, probabilities within 0.05', () => {
    const data = loadRetinaTensors({ dataDir: process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), size: 28 });
    seedInit(1);
    const fp32 = createModel(config('cnn', 28, 'fp32'));
    const optimizer = new AdamW(fp32.parameters(), { lr: 3e-3, weightDecay: 0 });
    const gen = new torch.Generator(2);
    for (let step = 0; step < 30; step++) {
      torch.tidy(() => {
        const batch = takeBatch(data.train, Int32Array.from(gen.uniform([32]).mul(data.train.count).floor().data() as Float32Array));
        const logits = fp32.forward(batch.x);
        const loss = logits.logSoftmax(1).gather(1, batch.y.unsqueeze(1)).mean().neg();
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
      });
    }
    const bf16 = createModel(config('cnn', 28, 'bf16'));
    bf16.loadStateDict(fp32.stateDict());
    const objective = createObjective(LossConfigSchema.parse({}), 5);
    const [p32, p16] = [fp32, bf16].map((m) => predictProbabilities(m, objective, takeRange(data.val, 0, data.val.count)));
    const argmax = (p: Float32Array, row: number) =>
      [0, 1, 2, 3, 4].reduce((best, k) => (p[row * 5 + k]! > p[row * 5 + best]! ? k : best), 0);
    let agree = 0;
    let maxDifference = 0;
    for (let row = 0; row < data.val.count; row++) {
      if (argmax(p32!, row) === argmax(p16!, row)) agree++;
      for (let k = 0; k < 5; k++) maxDifference = Math.max(maxDifference, Math.abs(p32![row * 5 + k]! - p16![row * 5 + k]!));
    }
    expect(maxDifference).toBeGreaterThan(0); // bf16 did run
    expect(maxDifference).toBeLessThan(0.05);
    expect(agree / data.val.count).toBeGreaterThan(0.97);
    releaseTrainingData(data);
  });
});

describe('frozen feature extractors (inference on oneDNN layouts)', () => {
  /** A compact CNN in eval mode whose batch norms have non-trivial weights and running statistics. */
  const trainedLike = (inputSize: number, seed: number, precision: 'fp32' | 'bf16' = 'fp32') => {
    seedInit(seed);
    const net = createModel(ModelConfigSchema.parse({ name: 'cnn', inputSize, numClasses: 5, width: 8, precision }));
    const gen = new torch.Generator(seed);
    torch.noGrad(() => {
      for (const [name, t] of net.stateDict()) {
        if (/bn\.(weight|bias)$/.test(name))
          t.copyInPlace(
            gen
              .normal(t.shape)
              .mul(0.5)
              .add(name.endsWith('weight') ? 1 : 0),
          );
      }
      torch.tidy(() => net.forward(gen.normal([16, 3, inputSize, inputSize]).mul(0.6))); // training mode: running statistics
    });
    net.eval();
    return net;
  };
  const close = (a: torch.Tensor, b: torch.Tensor) => torch.tidy(() => a.sub(b).abs().max().item() / b.abs().max().item());

  it.each([
    [28, 1],
    [28, 5],
    [64, 3],
  ])('a compact CNN at %i px gives features(x) at batch %i', (size, n) => {
    const net = trainedLike(size, n);
    const frozen = net.frozenFeatures!()!;
    const x = torch.keep(new torch.Generator(9).normal([n, 3, size, size]).clamp(-1, 1));
    expect(
      close(
        frozen.features(x),
        torch.noGrad(() => net.features(x)),
      ),
    ).toBeLessThan(1e-5);
    frozen.dispose();
  });

  it('an ensemble of compact CNNs gives its members features side by side', () => {
    const members = [trainedLike(28, 1), trainedLike(28, 2)];
    const ensemble = new Ensemble(members, createObjective(LossConfigSchema.parse({ kind: 'ce' }), 5));
    const x = torch.keep(new torch.Generator(4).normal([3, 3, 28, 28]).clamp(-1, 1));
    expect(
      close(
        ensemble.frozenFeatures()!.features(x),
        torch.noGrad(() => ensemble.features(x)),
      ),
    ).toBeLessThan(1e-5);
  });

  it('has none in bf16 (autocast) or when folding batch norm overflows float32', () => {
    expect(trainedLike(28, 1, 'bf16').frozenFeatures!()).toBeUndefined();
    const damaged = trainedLike(28, 1);
    torch.noGrad(() => {
      for (const t of damaged.parameters()) t.mulInPlace(1e30);
    });
    expect(damaged.frozenFeatures!()).toBeUndefined();
  });
});
