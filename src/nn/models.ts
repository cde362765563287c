// The models retinagrade trains: ResNet-18/50 in MedMNIST's variants and a compact CNN.
import { z } from 'zod';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { kaimingNormalFanOut } from './init.js';
import { BatchNorm2d, Conv2d, Dropout, GlobalAvgPool, Linear, MaxPool2d, ReLU, Sequential, pipe } from './layers.js';
import { Module } from './module.js';

export const ModelNameSchema = z.enum(['cnn', 'resnet18', 'resnet50']);

export const ModelConfigSchema = z
  .object({
    name: ModelNameSchema,
    inputSize: z.number().int().positive(),
    inChannels: z.number().int().positive().default(3),
    numClasses: z.number().int().min(2),
    /** Channels of the first stage; later stages double it. */
    width: z.number().int().positive().optional(),
    dropout: z.number().min(0).max(0.95).default(0),
    /** Stride of the compact CNN's first convolution (2 halves the resolution every later layer works at). */
    stemStride: z.union([z.literal(1), z.literal(2)]).optional(),
    /** Number of outputs when the head is not one logit per class (the ordinal head has K-1). */
    outputs: z.number().int().positive().optional(),
  })
  .strict();
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

const convBnRelu = (cin: number, cout: number, stride = 1): Module[] => [
  new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false }),
  new BatchNorm2d(cout),
  ReLU(),
];

/**
 * A classifier split at its last convolutional feature map: `classify(features(x))` is the
 * forward pass. Grad-CAM needs the split to weigh the feature map by its gradient.
 */
export interface FeatureClassifier extends Module {
  features(x: Tensor): Tensor;
  classify(features: Tensor): Tensor;
}

/** Layers of the head that follow the feature map: pooling, dropout, linear. */
const HEAD_LAYERS = 3;

/** Six 3x3 convolutions in three stages, global pooling and a linear head: fast on 2 cores. */
export class CompactCnn extends Sequential implements FeatureClassifier {
  constructor(config: ModelConfig) {
    const w = config.width ?? 32;
    super(
      ...convBnRelu(config.inChannels, w, config.stemStride ?? 1),
      ...convBnRelu(w, w),
      MaxPool2d(2),
      ...convBnRelu(w, 2 * w),
      ...convBnRelu(2 * w, 2 * w),
      MaxPool2d(2),
      ...convBnRelu(2 * w, 4 * w),
      ...convBnRelu(4 * w, 4 * w),
      GlobalAvgPool(),
      new Dropout(config.dropout),
      new Linear(4 * w, config.outputs ?? config.numClasses),
    );
  }

  features(x: Tensor): Tensor {
    return pipe(
      x,
      this.layers.slice(0, -HEAD_LAYERS).map((layer) => (h: Tensor) => layer.forward(h)),
    );
  }
  classify(features: Tensor): Tensor {
    return pipe(
      features,
      this.layers.slice(-HEAD_LAYERS).map((layer) => (h: Tensor) => layer.forward(h)),
    );
  }
}

/** A residual block; the skip path is a 1x1 projection (torchvision's `downsample`) when shapes change. */
abstract class ResidualBlock extends Module {
  abstract readonly downsample: Sequential | undefined;

  /** relu(residual + skip(x)), freeing the intermediates (see `pipe`). */
  protected merge(residual: Tensor, x: Tensor): Tensor {
    const skip = this.downsample ? this.downsample.forward(x) : x;
    const sum = residual.add(skip);
    residual.dispose();
    if (skip !== x) skip.dispose();
    const out = sum.relu();
    sum.dispose();
    return out;
  }

  protected shortcut(cin: number, cout: number, stride: number): Sequential | undefined {
    if (stride === 1 && cin === cout) return undefined;
    return this.child('downsample', new Sequential(new Conv2d(cin, cout, 1, { stride, bias: false }), new BatchNorm2d(cout)));
  }
}

class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | undefined;

  constructor(cin: number, planes: number, stride: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(cin, planes, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.child('bn1', new BatchNorm2d(planes));
    this.conv2 = this.child('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.bn2 = this.child('bn2', new BatchNorm2d(planes));
    this.downsample = this.shortcut(cin, planes, stride);
  }

  forward(x: Tensor): Tensor {
    const out = pipe(x, [
      (h) => this.conv1.forward(h),
      (h) => this.bn1.forward(h),
      (h) => h.relu(),
      (h) => this.conv2.forward(h),
      (h) => this.bn2.forward(h),
    ]);
    return this.merge(out, x);
  }
}

class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | undefined;

  constructor(cin: number, planes: number, stride: number) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(cin, planes, 1, { bias: false }));
    this.bn1 = this.child('bn1', new BatchNorm2d(planes));
    this.conv2 = this.child('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn2 = this.child('bn2', new BatchNorm2d(planes));
    this.conv3 = this.child('conv3', new Conv2d(planes, planes * 4, 1, { bias: false }));
    this.bn3 = this.child('bn3', new BatchNorm2d(planes * 4));
    this.downsample = this.shortcut(cin, planes * 4, stride);
  }

  forward(x: Tensor): Tensor {
    const out = pipe(x, [
      (h) => this.conv1.forward(h),
      (h) => this.bn1.forward(h),
      (h) => h.relu(),
      (h) => this.conv2.forward(h),
      (h) => this.bn2.forward(h),
      (h) => h.relu(),
      (h) => this.conv3.forward(h),
      (h) => this.bn3.forward(h),
    ]);
    return this.merge(out, x);
  }
}

type Block = typeof BasicBlock | typeof Bottleneck;

/**
 * ResNet-18/50 with torchvision's blocks, widths and block names (`layer1.0.conv1`, `downsample`);
 * the stem and classifier are `stem.*` and `head.*`. MedMNIST's variant for 28x28 inputs replaces the 7x7 stride-2
 * stem and max-pool with one 3x3 stride-1 convolution; larger inputs keep the standard stem.
 */
export class ResNet extends Module implements FeatureClassifier {
  readonly stem: Sequential;
  readonly stages: Sequential[];
  readonly head: Sequential;

  constructor(block: Block, depths: number[], config: ModelConfig) {
    super();
    const w = config.width ?? 64;
    const smallInput = config.inputSize <= 32;
    this.stem = this.child(
      'stem',
      smallInput
        ? new Sequential(new Conv2d(config.inChannels, w, 3, { padding: 1, bias: false }), new BatchNorm2d(w), ReLU())
        : new Sequential(
            new Conv2d(config.inChannels, w, 7, { stride: 2, padding: 3, bias: false }),
            new BatchNorm2d(w),
            ReLU(),
            MaxPool2d(3, 2, 1),
          ),
    );
    let cin = w;
    this.stages = depths.map((depth, i) => {
      const planes = w * 2 ** i;
      const blocks: Module[] = [];
      for (let b = 0; b < depth; b++) {
        blocks.push(new block(cin, planes, b === 0 && i > 0 ? 2 : 1));
        cin = planes * block.expansion;
      }
      return this.child(`layer${i + 1}`, new Sequential(...blocks));
    });
    this.head = this.child(
      'head',
      new Sequential(GlobalAvgPool(), new Dropout(config.dropout), new Linear(cin, config.outputs ?? config.numClasses)),
    );
    this.#initConvolutions();
  }

  #initConvolutions(): void {
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        const [out, , kh, kw] = m.weight.shape;
        torch.tidy(() => torch.noGrad(() => m.weight.copyInPlace(kaimingNormalFanOut(m.weight.shape, out * kh * kw))));
      }
    }
  }

  features(x: Tensor): Tensor {
    return pipe(
      x,
      [this.stem, ...this.stages].map((stage) => (h: Tensor) => stage.forward(h)),
    );
  }
  classify(features: Tensor): Tensor {
    return this.head.forward(features);
  }
  forward(x: Tensor): Tensor {
    const features = this.features(x);
    const logits = this.classify(features);
    features.dispose();
    return logits;
  }
}

export function createModel(config: ModelConfig): FeatureClassifier {
  switch (config.name) {
    case 'cnn':
      return new CompactCnn(config);
    case 'resnet18':
      return new ResNet(BasicBlock, [2, 2, 2, 2], config);
    case 'resnet50':
      return new ResNet(Bottleneck, [3, 4, 6, 3], config);
  }
}
