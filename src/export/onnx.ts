// A run's model as an ONNX graph (onnxruntime-node/-web, any ONNX runtime): batch norm folded into
// the convolutions, a dynamic batch dimension, probabilities as the output (an ensemble averages
// its members' inside the graph), and the facts a user needs in metadata_props.
import onnxProto from 'onnx-proto';
import { GRADE_NAMES } from '../data/grades.js';
import { PIXEL_SCALE } from '../data/preprocess.js';
import { UserError } from '../errors.js';
import { MIN_PROBABILITY } from '../eval/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { openRun, type OpenedModel } from '../model/open-run.js';
import { IDENTITY_TEMPERATURE } from '../model/run-calibration.js';
import type { RunMetrics } from '../model/run-metrics.js';
import {
  type BasicBlock,
  type BatchNorm2d,
  Bottleneck,
  CompactCnn,
  type Conv2d,
  type ConvBnRelu,
  CrossEntropy,
  FocalLoss,
  MAX_POOLS,
  ResNet,
  type FeatureClassifier,
  type PooledHead,
} from '../nn/index.js';
import { Ensemble } from '../model/ensemble.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';

const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

/** What the graph takes: the model's own tensor, or raw pixels normalized inside the graph. */
export const INPUT_STYLES = ['tensor', 'pixels'] as const;
export type InputStyle = (typeof INPUT_STYLES)[number];

/** Opsets whose Conv, MaxPool, Gemm, Softmax and the rest mean what this graph needs, with the IR version each requires. */
const IR_VERSION_OF_OPSET: Record<number, number> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };
export const OPSETS = Object.keys(IR_VERSION_OF_OPSET).map(Number);
/** Debian's python3-onnx (1.12) checks up to opset 17. */
export const DEFAULT_OPSET = 17;

export interface ExportOptions {
  opset?: number;
  input?: InputStyle;
  /** The run's metrics.json, for the test scores in metadata_props. */
  metrics?: RunMetrics;
}

type Attribute = number | number[] | string;

/** Nodes and initializers of one graph, with names made unique per prefix. */
class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  #count = 0;

  /** A float32 initializer. */
  constant(name: string, values: Float32Array, dims: number[]): string {
    this.initializers.push({
      name,
      dims,
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
    return name;
  }

  /** Appends a node; returns the name of its (single) output. */
  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, output?: string): string {
    const name = output ?? `${opType.toLowerCase()}_${this.#count++}`;
    this.nodes.push({
      opType,
      name,
      input: inputs,
      output: [name],
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return name;
  }
}

function attribute(name: string, value: Attribute): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
}

const floats = (t: { data(): unknown }): Float32Array => t.data() as Float32Array;
const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/**
 * A convolution with the batch norm after it folded in: w' = w * g / sqrt(var + eps) per output
 * channel, b' = (b - mean) * g / sqrt(var + eps) + beta, computed in double precision.
 */
function convBn(g: GraphBuilder, name: string, conv: Conv2d, bn: BatchNorm2d | undefined, x: string): string {
  const weight = floats(conv.weight);
  const bias = conv.bias ? floats(conv.bias) : new Float32Array(conv.outChannels);
  const perChannel = weight.length / conv.outChannels;
  const foldedWeight = new Float32Array(weight.length);
  const foldedBias = new Float32Array(conv.outChannels);
  const [gamma, beta, mean, variance] = bn
    ? [floats(bn.weight), floats(bn.bias), floats(bn.runningMean), floats(bn.runningVar)]
    : [undefined, undefined, undefined, undefined];
  for (let c = 0; c < conv.outChannels; c++) {
    const scale = bn ? gamma![c]! / Math.sqrt(variance![c]! + bn.eps) : 1;
    for (let k = 0; k < perChannel; k++) foldedWeight[c * perChannel + k] = weight[c * perChannel + k]! * scale;
    foldedBias[c] = bn ? (bias[c]! - mean![c]!) * scale + beta![c]! : bias[c]!;
  }
  const { stride, padding, dilation, groups } = conv.options;
  const [ph, pw] = pair(padding);
  const weightName = g.constant(`${name}.weight`, foldedWeight, conv.weight.shape);
  return g.node('Conv', [x, weightName, g.constant(`${name}.bias`, foldedBias, [conv.outChannels])], {
    kernel_shape: conv.weight.shape.slice(2),
    strides: pair(stride),
    pads: [ph, pw, ph, pw],
    dilations: pair(dilation),
    group: groups,
  });
}

const convBnRelu = (g: GraphBuilder, name: string, block: ConvBnRelu, x: string): string =>
  g.node('Relu', [convBn(g, `${name}.conv`, block.conv, block.bn, x)]);

function maxPool(g: GraphBuilder, pool: { kernel: number; stride: number; padding: number }, x: string): string {
  const { kernel, stride, padding } = pool;
  return g.node('MaxPool', [x], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [padding, padding, padding, padding] });
}

function residualBlock(g: GraphBuilder, name: string, block: BasicBlock | Bottleneck, x: string): string {
  const pairs: [Conv2d, BatchNorm2d][] = [
    [block.conv1, block.bn1],
    [block.conv2, block.bn2],
  ];
  if (block instanceof Bottleneck) pairs.push([block.conv3, block.bn3]);
  let h = x;
  pairs.forEach(([conv, bn], i) => {
    h = convBn(g, `${name}.conv${i + 1}`, conv, bn, h);
    if (i < pairs.length - 1) h = g.node('Relu', [h]);
  });
  const [downConv, downBn] = (block.downsample?.layers ?? []) as [Conv2d?, BatchNorm2d?];
  const skip = downConv ? convBn(g, `${name}.downsample`, downConv, downBn, x) : x;
  return g.node('Relu', [g.node('Add', [h, skip])]);
}

function head(g: GraphBuilder, name: string, pooled: PooledHead, features: string): string {
  const flat = g.node('Flatten', [g.node('GlobalAveragePool', [features])], { axis: 1 });
  const { fc } = pooled;
  const weight = g.constant(`${name}fc.weight`, floats(fc.weight), fc.weight.shape);
  const bias = fc.bias ? [g.constant(`${name}fc.bias`, floats(fc.bias), fc.bias.shape)] : [];
  return g.node('Gemm', [flat, weight, ...bias], { transB: 1 });
}

/** One model's logits from `x`; `prefix` names its weights (`member0.` in an ensemble). */
function logits(g: GraphBuilder, model: FeatureClassifier, prefix: string, x: string): string {
  if (model instanceof CompactCnn) {
    let h = x;
    model.stages.forEach((stage, i) => {
      if (i > 0) h = maxPool(g, MAX_POOLS.cnnStage, h);
      stage.layers.forEach((block, b) => {
        h = convBnRelu(g, `${prefix}stage${i + 1}.${b}`, block as ConvBnRelu, h);
      });
    });
    return head(g, prefix, model.head, h);
  }
  if (model instanceof ResNet) {
    let h = convBnRelu(g, `${prefix}stem`, model.stem, x);
    if (model.stemPool) h = maxPool(g, MAX_POOLS.resnetStem, h);
    model.stages.forEach((stage, i) => {
      stage.layers.forEach((block, b) => {
        h = residualBlock(g, `${prefix}layer${i + 1}.${b}`, block as BasicBlock | Bottleneck, h);
      });
    });
    return head(g, prefix, model.head, h);
  }
  throw new UserError(`export: no ONNX form for ${model.constructor.name}`);
}

const OUTPUT = 'probabilities';

/**
 * The graph's probabilities as `predict` gives them: softmax of one model's logits, or the mean of
 * an ensemble's members', then at the run's calibrated temperature when it has calibration.json
 * (softmax(log(max(p, MIN_PROBABILITY)) / T), as eval/calibration.ts applyTemperature computes it).
 */
function probabilities(g: GraphBuilder, opened: OpenedModel, x: string): string {
  const members = opened.model instanceof Ensemble ? opened.model.members : [opened.model];
  const prefixes = members.length === 1 ? [''] : members.map((_, k) => `member${k}.`);
  const each = members.map((member, k) => g.node('Softmax', [logits(g, member, prefixes[k]!, x)], { axis: 1 }));
  const temperature = opened.calibration?.temperature;
  const toOutput = temperature === undefined ? OUTPUT : undefined;
  const mean =
    each.length === 1
      ? g.node('Identity', each, {}, toOutput)
      : g.node('Div', [g.node('Sum', each), g.constant('ensemble_size', new Float32Array([each.length]), [])], {}, toOutput);
  if (temperature === undefined) return mean;
  const floor = g.constant('min_probability', new Float32Array([MIN_PROBABILITY]), []);
  const logP = g.node('Log', [g.node('Max', [mean, floor])]);
  const tempered = g.node('Div', [logP, g.constant('temperature', new Float32Array([temperature]), [])]);
  return g.node('Softmax', [tempered], { axis: 1 }, OUTPUT);
}

function inputValue(name: string, elemType: number, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** The run's model as a serialized ONNX ModelProto. */
export function exportOnnx(opened: OpenedModel, options: ExportOptions = {}): Uint8Array {
  const { opset = DEFAULT_OPSET, input = 'tensor', metrics } = options;
  const irVersion = IR_VERSION_OF_OPSET[opset];
  if (irVersion === undefined) throw new UserError(`--opset ${opset} is not supported: expected one of ${OPSETS.join(', ')}`);
  const memberObjective = opened.model instanceof Ensemble ? opened.model.memberObjective : opened.objective;
  if (!(memberObjective instanceof CrossEntropy || memberObjective instanceof FocalLoss)) {
    throw new UserError(
      `export: the model's probabilities come from ${memberObjective.constructor.name}, which has no ONNX form yet ` +
        '(models trained with the ce or focal loss export: a softmax of their outputs)',
    );
  }
  const { inputSize: size, inChannels } = opened.modelConfig;
  const g = new GraphBuilder();
  let x = 'image';
  const graphInput =
    input === 'tensor'
      ? inputValue(x, DataType.FLOAT, ['batch', inChannels, size, size])
      : inputValue(x, DataType.UINT8, ['batch', size, size, inChannels]);
  if (input === 'pixels') {
    const nchw = g.node('Transpose', [g.node('Cast', [x], { to: DataType.FLOAT })], { perm: [0, 3, 1, 2] });
    const scale = g.constant('pixel_scale', new Float32Array([PIXEL_SCALE]), []);
    const one = g.constant('one', new Float32Array([1]), []);
    x = g.node('Sub', [g.node('Div', [nchw, scale]), one]);
  }
  probabilities(g, opened, x);
  const model: onnxProto.onnx.IModelProto = {
    irVersion,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'retinagrade',
    docString: NOT_FOR_CLINICAL_USE,
    graph: {
      name: `retinagrade_${opened.modelConfig.name}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [graphInput],
      output: [inputValue(OUTPUT, DataType.FLOAT, ['batch', opened.modelConfig.numClasses])],
    },
    metadataProps: Object.entries(metadata(opened, input, metrics)).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** metadata_props: what a program using the file needs to feed it and read it. */
function metadata(opened: OpenedModel, input: InputStyle, metrics: RunMetrics | undefined): Record<string, string> {
  const size = opened.modelConfig.inputSize;
  const test = metrics && { acc: metrics.test.acc, auc: metrics.test.auc, qwk: metrics.test.qwk };
  return {
    notice: NOT_FOR_CLINICAL_USE,
    grade_names: JSON.stringify(GRADE_NAMES),
    input_size: String(size),
    input:
      input === 'tensor'
        ? `image: float32 [batch, 3, ${size}, ${size}] (NCHW, RGB) normalized`
        : `image: uint8 [batch, ${size}, ${size}, 3] (NHWC, RGB pixels 0-255), normalized inside the graph`,
    normalization: `x / ${PIXEL_SCALE} - 1 per RGB channel (pixels 0-255 to [-1, 1])`,
    preprocessing: `photographs: a square around the retina disc, resized (bilinear, antialiased) to ${size}x${size}`,
    output: `${OUTPUT}: float32 [batch, ${GRADE_NAMES.length}], per grade, summing to 1`,
    temperature: String(opened.calibration?.temperature ?? IDENTITY_TEMPERATURE),
    model: JSON.stringify(opened.modelConfig),
    ensemble: String(opened.ensemble),
    ...(test ? { test_metrics: JSON.stringify(test) } : {}),
  };
}

export interface ExportSummary {
  bytes: number;
  opset: number;
  input: InputStyle;
  model: OpenedModel['modelConfig'];
  ensemble: number;
}

/** Writes the run's model to `outFile` as ONNX (atomically: a failed export leaves what was there). */
export function exportRun(runDir: string, outFile: string, options: Omit<ExportOptions, 'metrics'> = {}): ExportSummary {
  const opened = openRun(runDir);
  try {
    let metrics: RunMetrics | undefined;
    if (opened.run.has('metrics')) {
      try {
        metrics = opened.run.readJson<RunMetrics>('metrics');
      } catch (error) {
        throw new UserError(`${opened.run.file('metrics')} is not a run's metrics: ${(error as Error).message}`);
      }
    }
    const bytes = exportOnnx(opened, { ...options, metrics });
    writeFileAtomic(outFile, bytes);
    const { opset = DEFAULT_OPSET, input = 'tensor' } = options;
    return { bytes: bytes.length, opset, input, model: opened.modelConfig, ensemble: opened.ensemble };
  } finally {
    opened.model.dispose();
  }
}
