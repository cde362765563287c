// The models retinagrade trains: ResNet-18/50 in MedMNIST's variants and a compact CNN.
import { z } from 'zod';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { kaimingNormalFanOut } from './init.js';
import { BatchNorm2d, Conv2d, Dropout, GlobalAvgPool, Linear, MaxPool2d, Sequential, pipe } from './layers.js';
import { Module } from './module.js';

export const ModelNameSchema = z.enum(['cnn', 'resnet18', 'resnet50']);
/** fp32, or bf16 convolutions and matrix products (src/torch/precision.ts). */
export const PrecisionSchema = z.enum(torch.PRECISIONS);

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
    /** The precision the model computes at (absent: fp32): the one it was trained at, unless overridden when opened. */
    precision: PrecisionSchema.optional(),
  })
  .strict();
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** Max-pools by kernel, stride and padding (exporters write the same): the compact CNN's between stages, ResNet's after its 7x7 stem. */
export const MAX_POOLS = {
  cnnStage: { kernel: 2, stride: 2, padding: 0 },
  resnetStem: { kernel: 3, stride: 2, padding: 1 },
} as const;
const maxPool = ({ kernel, stride, padding }: { kernel: number; stride: number; padding: number }) => MaxPool2d(kernel, stride, padding);

/** A convolution without bias, batch norm and ReLU: children `conv` and `bn`, as in `stem.conv.weight`. */
export class ConvBnRelu extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(cin: number, cout: number, options: { kernel?: number; stride?: number; padding?: number } = {}) {
    super();
    const { kernel = 3, stride = 1, padding = (kernel - 1) / 2 } = options;
    this.conv = this.child('conv', new Conv2d(cin, cout, kernel, { stride, padding, bias: false }));
    this.bn = this.child('bn', new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    return pipe(x, [(h) => this.conv.forward(h), (h) => this.bn.forward(h), (h) => h.relu()]);
  }

  /**
   * The layer at inference on tensors in oneDNN's layout (torch `toOneDnn`): batch norm's running
   * statistics folded into the convolution, whose weight is packed once. Computes what `forward`
   * does in eval mode with the weights as they are now; the caller disposes the packed tensors.
   * Undefined when folding overflows float32 (damaged weights): `forward` then reports them.
   */
  frozen(): { apply: (h: Tensor) => Tensor; tensors: Tensor[] } | undefined {
    return torch.tidy(() =>
      torch.noGrad(() => {
        const { bn, conv } = this;
        const scale = bn.weight.div(bn.runningVar.add(bn.eps).sqrt());
        const folded = conv.weight.mul(scale.reshape([-1, 1, 1, 1]));
        const bias = bn.bias.sub(bn.runningMean.mul(scale));
        if (![folded, bias].every((t) => Number.isFinite(t.abs().max().item()))) return undefined;
        const weight = torch.packConv2dWeight(folded, conv.options);
        const apply = (h: Tensor): Tensor => {
          const convolved = torch.packedConv2d(h, weight, bias, conv.options);
          const activated = convolved.relu();
          convolved.dispose();
          return activated;
        };
        return { apply, tensors: [weight, bias] };
      }),
    );
  }
}

/**
 * A classifier split at its last convolutional feature map: `classify(features(x))` is the
 * forward pass. Grad-CAM needs the split to weigh the feature map by its gradient.
 */
export interface FeatureClassifier extends Module {
  features(x: Tensor): Tensor;
  classify(features: Tensor): Tensor;
  /**
   * `features` for inference only (no autograd, eval mode), computed faster from weights prepared
   * once, where the architecture has such a path; it reflects the weights at the time of the call.
   */
  frozenFeatures?(): FrozenFeatures | undefined;
}

/** A frozen feature extractor: `features(x)` as the model computed it when frozen; `dispose` frees what it holds. */
export interface FrozenFeatures {
  features: (x: Tensor) => Tensor;
  dispose: () => void;
}

/**
 * A model as a feature extractor and a head, both run at the model's precision; every output is
 * float32 (a bf16 model casts its features and logits back), so callers never see bf16.
 */
abstract class PrecisionClassifier extends Module implements FeatureClassifier {
  constructor(readonly precision: torch.Precision) {
    super();
  }
  protected abstract computeFeatures(x: Tensor): Tensor;
  protected abstract computeLogits(features: Tensor): Tensor;

  features(x: Tensor): Tensor {
    return torch.atPrecision(this.precision, () => this.computeFeatures(x));
  }
  classify(features: Tensor): Tensor {
    return torch.atPrecision(this.precision, () => this.computeLogits(features));
  }
  /**
   * classify(features(x)): the two halves as grading runs them (it needs the feature map between
   * them, for the gate and Grad-CAM), so that a photograph graded and the same image evaluated get
   * the same probabilities at bf16 too (the feature map is pooled in float32 either way).
   */
  forward(x: Tensor): Tensor {
    const features = this.features(x);
    const logits = this.classify(features);
    features.dispose();
    return logits;
  }
}

/** Global average pooling, dropout and the linear layer `fc`: the head both architectures share. */
export class PooledHead {
  readonly #pool = GlobalAvgPool();
  constructor(
    readonly dropout: Dropout,
    readonly fc: Linear,
  ) {}
  forward(features: Tensor): Tensor {
    return pipe(features, [(h) => this.#pool.forward(h), (h) => this.dropout.forward(h), (h) => this.fc.forward(h)]);
  }
}

/**
 * Six 3x3 convolutions in three stages of two (`stage1.0.conv`, ..., `stage3.1.bn`), a 2x2 max-pool
 * between stages, global pooling and a linear head `fc`: fast on 2 cores.
 */
export class CompactCnn extends PrecisionClassifier {
  readonly stages: Sequential[];
  readonly head: PooledHead;
  readonly #pool = maxPool(MAX_POOLS.cnnStage);

  constructor(config: ModelConfig) {
    super(config.precision ?? 'fp32');
    const w = config.width ?? 32;
    let cin = config.inChannels;
    this.stages = [w, 2 * w, 4 * w].map((width, i) => {
      const first = new ConvBnRelu(cin, width, { stride: i === 0 ? (config.stemStride ?? 1) : 1 });
      cin = width;
      return this.child(`stage${i + 1}`, new Sequential(first, new ConvBnRelu(width, width)));
    });
    const dropout = this.child('dropout', new Dropout(config.dropout));
    this.head = new PooledHead(dropout, this.child('fc', new Linear(cin, config.outputs ?? config.numClasses)));
  }

  protected computeFeatures(x: Tensor): Tensor {
    const [stage1, stage2, stage3] = this.stages as [Sequential, Sequential, Sequential];
    return pipe(x, [
      (h) => stage1.forward(h),
      (h) => this.#pool.forward(h),
      (h) => stage2.forward(h),
      (h) => this.#pool.forward(h),
      (h) => stage3.forward(h),
    ]);
  }
  protected computeLogits(features: Tensor): Tensor {
    return this.head.forward(features);
  }

  /** The stages as ConvBnRelu.frozen layers on oneDNN's layout (fp32 only: bf16 runs under autocast). */
  frozenFeatures(): FrozenFeatures | undefined {
    if (this.precision !== 'fp32') return undefined;
    const packed: Tensor[] = [];
    const dispose = () => {
      for (const t of packed) t.dispose();
    };
    const steps: ((h: Tensor) => Tensor)[] = [];
    for (const [i, stage] of this.stages.entries()) {
      if (i > 0) steps.push((h) => this.#pool.forward(h)); // as computeFeatures: a max-pool between stages
      for (const layer of stage.layers as ConvBnRelu[]) {
        const frozen = layer.frozen();
        if (!frozen) {
          dispose();
          return undefined;
        }
        packed.push(...frozen.tensors);
        steps.push(frozen.apply);
      }
    }
    return { features: (x) => torch.tidy(() => torch.noGrad(() => torch.fromOneDnn(pipe(torch.toOneDnn(x), steps)))), dispose };
  }
}

/** A residual block; the skip path is a 1x1 projection (torchvision's `downsample`) when shapes change. */
export abstract class ResidualBlock extends Module {
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

export class BasicBlock extends ResidualBlock {
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

export class Bottleneck extends ResidualBlock {
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
 * ResNet-18/50 with torchvision's blocks, widths and names (`layer1.0.conv1`, `downsample`, `fc`);
 * the stem is `stem.conv` and `stem.bn`. MedMNIST's variant for 28x28 inputs replaces the 7x7
 * stride-2 stem and max-pool with one 3x3 stride-1 convolution; larger inputs keep the standard stem.
 */
export class ResNet extends PrecisionClassifier {
  readonly stem: ConvBnRelu;
  /** torchvision's max-pool after the 7x7 stem (MAX_POOLS.resnetStem); none for small inputs. */
  readonly stemPool: Module | undefined;
  readonly stages: Sequential[];
  readonly head: PooledHead;

  constructor(block: Block, depths: number[], config: ModelConfig) {
    super(config.precision ?? 'fp32');
    const w = config.width ?? 64;
    const smallInput = config.inputSize <= 32;
    this.stem = this.child(
      'stem',
      smallInput ? new ConvBnRelu(config.inChannels, w) : new ConvBnRelu(config.inChannels, w, { kernel: 7, stride: 2, padding: 3 }),
    );
    this.stemPool = smallInput ? undefined : maxPool(MAX_POOLS.resnetStem);
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
    const dropout = this.child('dropout', new Dropout(config.dropout));
    this.head = new PooledHead(dropout, this.child('fc', new Linear(cin, config.outputs ?? config.numClasses)));
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

  protected computeFeatures(x: Tensor): Tensor {
    const stemPool = this.stemPool;
    return pipe(x, [
      (h) => this.stem.forward(h),
      ...(stemPool ? [(h: Tensor) => stemPool.forward(h)] : []),
      ...this.stages.map((stage) => (h: Tensor) => stage.forward(h)),
    ]);
  }
  protected computeLogits(features: Tensor): Tensor {
    return this.head.forward(features);
  }
}

/**
 * Runs saved before the readable names keyed the compact CNN's layers by their index in one flat
 * list (`0.weight`, `1.running_mean`, ..., `22.bias`) and ResNet's stem and head by position
 * (`stem.0`, `stem.1`, `head.2`). Old name -> current name, per layer.
 */
const LEGACY_LAYER_NAMES: Record<string, string> = {
  '0': 'stage1.0.conv',
  '1': 'stage1.0.bn',
  '3': 'stage1.1.conv',
  '4': 'stage1.1.bn',
  '7': 'stage2.0.conv',
  '8': 'stage2.0.bn',
  '10': 'stage2.1.conv',
  '11': 'stage2.1.bn',
  '14': 'stage3.0.conv',
  '15': 'stage3.0.bn',
  '17': 'stage3.1.conv',
  '18': 'stage3.1.bn',
  '22': 'fc',
  'stem.0': 'stem.conv',
  'stem.1': 'stem.bn',
  'head.2': 'fc',
};
const LEGACY_KEY = /^(member\d+\.)?(\d+|stem\.[01]|head\.2)\.([a-z_]+)$/;

/** A state dict with any key of the old naming (also inside an ensemble's `memberK.`) renamed to the current one. */
export function renameLegacyKeys<T>(state: ReadonlyMap<string, T>): Map<string, T> {
  return new Map(
    [...state].map(([key, value]): [string, T] => {
      const match = LEGACY_KEY.exec(key);
      const layer = match && LEGACY_LAYER_NAMES[match[2]!];
      return [layer ? `${match[1] ?? ''}${layer}.${match[3]}` : key, value];
    }),
  );
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
