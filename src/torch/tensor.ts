// The typed tensor API over the libtorch binding. Methods follow PyTorch's names and semantics
// (broadcasting, dims, defaults) so that code reads like the PyTorch it is compared with.
import { native, type CpuCacheStats, type TensorHandle } from './native.js';
import { track, type Disposable } from './scope.js';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
export type Operand = Tensor | number;

const h = (x: Operand): TensorHandle | number => (typeof x === 'number' ? x : x.handle);
const pair = (v: number | [number, number]): number[] => (typeof v === 'number' ? [v, v] : v);

export class Tensor implements Disposable {
  #handle: TensorHandle | undefined;

  constructor(handle: TensorHandle) {
    this.#handle = handle;
    track(this);
  }

  get handle(): TensorHandle {
    if (this.#handle === undefined) throw new Error('tensor was already disposed');
    return this.#handle;
  }
  get isDisposed(): boolean {
    return this.#handle === undefined;
  }
  dispose(): void {
    if (this.#handle !== undefined) native.dispose(this.#handle);
    this.#handle = undefined;
  }

  // --- metadata and data out ---
  get shape(): number[] {
    return native.shape(this.handle);
  }
  get dtype(): DType {
    return native.dtype(this.handle) as DType;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** A copy of the elements in row-major order (int64 as BigInt64Array, bool as Uint8Array). */
  data(): TypedArray {
    return native.toData(this.handle);
  }
  /** The elements as plain numbers, row-major. */
  toArray(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d);
  }
  item(): number {
    return native.item(this.handle);
  }
  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}])`;
  }

  // --- conversion ---
  to(dtype: DType): Tensor {
    return new Tensor(native.to(this.handle, dtype));
  }
  float(): Tensor {
    return this.to('float32');
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }

  // --- autograd ---
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.handle, value);
  }
  /** The accumulated gradient (a new view on it), or undefined if none. */
  get grad(): Tensor | undefined {
    const g = native.grad(this.handle);
    return g === undefined ? undefined : new Tensor(g);
  }
  clearGrad(): void {
    native.clearGrad(this.handle);
  }
  backward(gradient?: Tensor): void {
    native.backward(this.handle, gradient?.handle);
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }

  // --- elementwise ---
  add(other: Operand, alpha = 1): Tensor {
    return new Tensor(native.add(this.handle, h(other), alpha));
  }
  sub(other: Operand, alpha = 1): Tensor {
    return new Tensor(native.sub(this.handle, h(other), alpha));
  }
  mul(other: Operand): Tensor {
    return new Tensor(native.mul(this.handle, h(other)));
  }
  div(other: Operand): Tensor {
    return new Tensor(native.div(this.handle, h(other)));
  }
  pow(exponent: Operand): Tensor {
    return new Tensor(native.pow(this.handle, h(exponent)));
  }
  eq(other: Operand): Tensor {
    return new Tensor(native.eq(this.handle, h(other)));
  }
  lt(other: Operand): Tensor {
    return new Tensor(native.lt(this.handle, h(other)));
  }
  gt(other: Operand): Tensor {
    return new Tensor(native.gt(this.handle, h(other)));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(native.minimum(this.handle, other.handle));
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, other.handle));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.handle));
  }
  leakyRelu(slope = 0.01): Tensor {
    return new Tensor(native.leakyRelu(this.handle, slope));
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return new Tensor(native.gelu(this.handle, approximate));
  }
  silu(): Tensor {
    return new Tensor(native.silu(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.handle));
  }
  clamp(min?: number, max?: number): Tensor {
    return new Tensor(native.clamp(this.handle, min, max));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, value));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.handle, dim));
  }

  // --- reductions (no dims: over all elements) ---
  sum(dims?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.sum(this.handle, dimList(dims), keepdim));
  }
  mean(dims?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.mean(this.handle, dimList(dims), keepdim));
  }
  /** The maximum over `dims` (all elements if none); written into `out` when given, and `out` returned. */
  max(dims?: number | number[], keepdim = false, out?: Tensor): Tensor {
    return into(out, native.amax(this.handle, dimList(dims), keepdim, out?.handle));
  }
  /** The minimum over `dims` (all elements if none); written into `out` when given, and `out` returned. */
  min(dims?: number | number[], keepdim = false, out?: Tensor): Tensor {
    return into(out, native.amin(this.handle, dimList(dims), keepdim, out?.handle));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim, keepdim));
  }
  /** Variance; unbiased (Bessel-corrected) by default, as in PyTorch. */
  var(dims?: number | number[], unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.var(this.handle, dimList(dims), unbiased, keepdim));
  }
  logsumexp(dims: number | number[], keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.handle, dimList(dims)!, keepdim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, dim));
  }

  // --- shape and indexing ---
  reshape(shape: number[]): Tensor {
    return new Tensor(native.reshape(this.handle, shape));
  }
  view(shape: number[]): Tensor {
    return new Tensor(native.view(this.handle, shape));
  }
  permute(dims: number[]): Tensor {
    return new Tensor(native.permute(this.handle, dims));
  }
  transpose(a: number, b: number): Tensor {
    return new Tensor(native.transpose(this.handle, a, b));
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.handle));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  squeeze(dim: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim));
  }
  expand(shape: number[]): Tensor {
    return new Tensor(native.expand(this.handle, shape));
  }
  flatten(start = 0, end = -1): Tensor {
    return new Tensor(native.flatten(this.handle, start, end));
  }
  /** Elements start..end (exclusive) with a step along `dim`, as a view. */
  slice(dim: number, start: number, end: number, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  /** The slices `index` (int64) along `dim`; written into `out` when given, and `out` returned. */
  indexSelect(dim: number, index: Tensor, out?: Tensor): Tensor {
    return into(out, native.indexSelect(this.handle, dim, index.handle, out?.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  flip(dims: number[]): Tensor {
    return new Tensor(native.flip(this.handle, dims));
  }
  /** Pads the last dims; `pad` lists (left, right) pairs from the last dim backwards, as torch's F.pad. */
  pad(pad: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor {
    return new Tensor(native.pad(this.handle, pad, mode, value));
  }

  // --- in place, for optimizer and running-statistic updates under noGrad ---
  addInPlace(other: Operand, alpha = 1): this {
    native.addInPlace(this.handle, h(other), alpha);
    return this;
  }
  mulInPlace(other: Operand): this {
    native.mulInPlace(this.handle, h(other));
    return this;
  }
  lerpInPlace(end: Tensor, weight: number): this {
    native.lerpInPlace(this.handle, end.handle, weight);
    return this;
  }
  divInPlace(other: Operand): this {
    native.divInPlace(this.handle, h(other));
    return this;
  }
  clampInPlace(min?: number, max?: number): this {
    native.clampInPlace(this.handle, min, max);
    return this;
  }
  floorInPlace(): this {
    native.floorInPlace(this.handle);
    return this;
  }
  absInPlace(): this {
    native.absInPlace(this.handle);
    return this;
  }
  copyInPlace(src: Tensor): this {
    native.copyInPlace(this.handle, src.handle);
    return this;
  }
  fillInPlace(value: number): this {
    native.fillInPlace(this.handle, value);
    return this;
  }
}

function dimList(dims: number | number[] | undefined): number[] | undefined {
  return typeof dims === 'number' ? [dims] : dims;
}

/**
 * The result of an op that takes `out`: `out` when given (the op wrote into it), else the new
 * tensor the op returned. Every `out` argument of this API is honoured, this way.
 */
function into(out: Tensor | undefined, made: TensorHandle | undefined): Tensor {
  return out ?? new Tensor(made!);
}

// --- creation ---

const dtypeOfArray = (data: TypedArray): DType =>
  data instanceof Float32Array
    ? 'float32'
    : data instanceof Float64Array
      ? 'float64'
      : data instanceof Int32Array
        ? 'int32'
        : data instanceof BigInt64Array
          ? 'int64'
          : 'uint8';

/** A tensor copied from a typed array or numbers; dtype defaults to the array's (float32 for numbers). */
export function tensor(data: TypedArray | number[], shape?: number[], dtype?: DType): Tensor {
  const typed = Array.isArray(data) ? Float64Array.from(data) : data;
  const target = dtype ?? (Array.isArray(data) ? 'float32' : dtypeOfArray(data));
  return new Tensor(native.fromData(typed, shape ?? [typed.length], target));
}
export const zeros = (shape: number[], dtype: DType = 'float32'): Tensor => new Tensor(native.zeros(shape, dtype));
export const ones = (shape: number[], dtype: DType = 'float32'): Tensor => new Tensor(native.ones(shape, dtype));
/** A tensor with uninitialized contents: fill it completely (e.g. copyInPlace) before reading it. */
export const empty = (shape: number[], dtype: DType = 'float32'): Tensor => new Tensor(native.empty(shape, dtype));
export const full = (shape: number[], value: number, dtype: DType = 'float32'): Tensor => new Tensor(native.full(shape, value, dtype));
export const arange = (start: number, end: number, step = 1, dtype: DType = 'int64'): Tensor =>
  new Tensor(native.arange(start, end, step, dtype));
const handles = (tensors: Tensor[]): TensorHandle[] => tensors.map((t) => t.handle);
export const cat = (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.cat(handles(tensors), dim));
export const stack = (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.stack(handles(tensors), dim));
/**
 * self + value * t1 * t2 (broadcasting), into `out` when given, else a new tensor. `out` may be
 * one of the inputs: `addcmul(a, b, c, a, v)` updates `a` in place.
 */
export function addcmul(self: Tensor, t1: Tensor, t2: Tensor, out?: Tensor, value = 1): Tensor {
  return into(out, native.addcmul(self.handle, t1.handle, t2.handle, out?.handle, value));
}
/** self + value * t1 / t2 (broadcasting), into `out` as addcmul. */
export function addcdiv(self: Tensor, t1: Tensor, t2: Tensor, out?: Tensor, value = 1): Tensor {
  return into(out, native.addcdiv(self.handle, t1.handle, t2.handle, out?.handle, value));
}
/** The scalars of one Adam step (see adamStep). */
export interface AdamStepScalars {
  /** Adam's weight decay: the gradient gains l2Decay * param (0 for none). */
  l2Decay: number;
  /** AdamW's decoupled decay: the parameter is multiplied by this first (1 for none). */
  decayFactor: number;
  beta1: number;
  beta2: number;
  /** sqrt(1 - beta2^step). */
  biasCorrection2Sqrt: number;
  eps: number;
  /** -lr / (1 - beta1^step). */
  stepSize: number;
}
/**
 * One Adam update of `param` and its moments, in place and in one pass (torch.optim.Adam's
 * arithmetic, rounding for rounding): m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
 * param += stepSize * m / (sqrt(v) / biasCorrection2Sqrt + eps).
 */
export function adamStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, s: AdamStepScalars): void {
  native.adamStep(
    param.handle,
    grad.handle,
    expAvg.handle,
    expAvgSq.handle,
    s.l2Decay,
    s.decayFactor,
    s.beta1,
    s.beta2,
    s.biasCorrection2Sqrt,
    s.eps,
    s.stepSize,
  );
}
/**
 * input + batch1 @ batch2 for each batch entry ([b, n, m] @ [b, m, p]); `input` broadcasts to
 * [b, n, p]. Written into `out` when given (it must not overlap batch1 or batch2), and `out` returned.
 */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, out?: Tensor): Tensor {
  return into(out, native.baddbmm(input.handle, batch1.handle, batch2.handle, out?.handle));
}
export const where = (condition: Tensor, a: Tensor, b: Tensor): Tensor => new Tensor(native.where(condition.handle, a.handle, b.handle));

// --- functional neural-network kernels ---

export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return new Tensor(native.linear(x.handle, weight.handle, bias?.handle));
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, options: Conv2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = options;
  return new Tensor(native.conv2d(x.handle, weight.handle, bias?.handle, pair(stride), pair(padding), pair(dilation), groups));
}

/*
 * Inference in oneDNN's blocked layout: given contiguous tensors, libtorch's CPU convolution
 * reorders input, weights and output around every call, which at small batches costs more than
 * the arithmetic. A weight packed once (packConv2dWeight) and activations kept in the layout
 * between layers (toOneDnn ... fromOneDnn) leave one reorder in and one out. Convolution, ReLU and
 * max pooling accept such tensors; they have no autograd and no data() until fromOneDnn.
 */
/** `x` (float32 NCHW) in oneDNN's layout. */
export const toOneDnn = (x: Tensor): Tensor => new Tensor(native.toMkldnn(x.contiguous().handle));
/** A tensor in oneDNN's layout back as a contiguous one. */
export const fromOneDnn = (x: Tensor): Tensor => new Tensor(native.toDense(x.handle));
/** A convolution weight reordered once for packedConv2d with these options. */
export function packConv2dWeight(weight: Tensor, options: Conv2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = options;
  return new Tensor(native.mkldnnConvWeight(weight.handle, pair(padding), pair(stride), pair(dilation), groups));
}
/** conv2d of `x` in oneDNN's layout with a packed weight (the options it was packed with); the result stays in the layout. */
export function packedConv2d(x: Tensor, packedWeight: Tensor, bias?: Tensor, options: Conv2dOptions = {}): Tensor {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = options;
  return new Tensor(native.mkldnnConv2d(x.handle, packedWeight.handle, bias?.handle, pair(padding), pair(stride), pair(dilation), groups));
}

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  runningMean?: Tensor;
  runningVar?: Tensor;
  training: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch norm over dim 1; in training it uses batch statistics and updates the running ones in place. */
export function batchNorm(x: Tensor, options: BatchNormOptions): Tensor {
  const { weight, bias, runningMean, runningVar, training, momentum = 0.1, eps = 1e-5 } = options;
  return new Tensor(
    native.batchNorm(x.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training, momentum, eps),
  );
}

export interface PoolOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  ceilMode?: boolean;
}
export function maxPool2d(
  x: Tensor,
  kernel: number | [number, number],
  options: PoolOptions & { dilation?: number | [number, number] } = {},
): Tensor {
  const { stride = kernel, padding = 0, dilation = 1, ceilMode = false } = options;
  return new Tensor(native.maxPool2d(x.handle, pair(kernel), pair(stride), pair(padding), pair(dilation), ceilMode));
}
export function avgPool2d(x: Tensor, kernel: number | [number, number], options: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  const { stride = kernel, padding = 0, ceilMode = false, countIncludePad = true } = options;
  return new Tensor(native.avgPool2d(x.handle, pair(kernel), pair(stride), pair(padding), ceilMode, countIncludePad));
}
export function adaptiveAvgPool2d(x: Tensor, size: number | [number, number]): Tensor {
  return new Tensor(native.adaptiveAvgPool2d(x.handle, pair(size)));
}
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  return new Tensor(native.dropout(x.handle, p, training));
}

export interface InterpolateOptions {
  mode?: 'bilinear' | 'nearest';
  alignCorners?: boolean;
  /** Antialias when shrinking (bilinear only), like torchvision's resize. */
  antialias?: boolean;
}
export function interpolate(x: Tensor, size: [number, number], options: InterpolateOptions = {}): Tensor {
  const { mode = 'bilinear', alignCorners = false, antialias = false } = options;
  return new Tensor(native.interpolate(x.handle, size, mode, alignCorners, antialias));
}
/** Sampling grid for a batch of 2x3 affine matrices `theta` (N,2,3), output size [N,C,H,W]. */
export function affineGrid(theta: Tensor, size: [number, number, number, number], alignCorners = false): Tensor {
  return new Tensor(native.affineGrid(theta.handle, size, alignCorners));
}
export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}
export function gridSample(x: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const { mode = 'bilinear', paddingMode = 'zeros', alignCorners = false } = options;
  return new Tensor(native.gridSample(x.handle, grid.handle, mode, paddingMode, alignCorners));
}

// --- runtime ---

/** Runs `fn` with autograd recording off (like torch.no_grad). */
export function noGrad<R>(fn: () => R): R {
  const previous = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}
/**
 * libtorch's thread count, one for the process: this thread uses it at once, every other thread from its first op on
 * (one that has already computed keeps its count). Each thread that computes runs a team of its own.
 */
export const setNumThreads = (n: number): void => native.setNumThreads(n);
export const getNumThreads = (): number => native.getNumThreads();
export const libtorchVersion = (): string => native.version();

/** Statistics of the binding's cache of large freed tensor blocks (reused instead of re-faulted). */
export const cpuCacheStats = (): CpuCacheStats => native.cpuCacheStats();
/** Unmaps every cached (freed) large tensor block; live tensors are untouched. */
export const emptyCpuCache = (): void => native.emptyCpuCache();
/** Bytes this thread's V8 heap counts as held outside it (tensors, typed arrays): what drives GC to free unreferenced tensors. */
export const externalMemory = (): number => native.externalMemory();
/** Tensor storages this thread's handles hold (not disposed, not yet collected): what a leak check counts. */
export const liveStorages = (): number => native.liveStorages();
