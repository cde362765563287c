// Loads the libtorch binding built from native/ and describes its surface to TypeScript.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

/** An opaque libtorch tensor owned by the binding. */
export interface TensorHandle {
  readonly __brand: 'TensorHandle';
}
/** An opaque libtorch CPU generator. */
export interface GeneratorHandle {
  readonly __brand: 'GeneratorHandle';
}
/** An opaque c10d store: a TCPStore, or a prefix of one. */
export interface StoreHandle {
  readonly __brand: 'StoreHandle';
}
/** An opaque c10d Gloo process group. */
export interface ProcessGroupHandle {
  readonly __brand: 'ProcessGroupHandle';
}
/** The reductions Gloo's allreduce has (no average: sum, then divide). */
export type ReduceOp = 'sum' | 'product' | 'min' | 'max';
/** Where Gloo listens: the host name's address, a given host's, or a network interface's. */
export type GlooDevice = 'default' | 'hostname' | 'interface';

type T = TensorHandle;
type TOrNumber = TensorHandle | number;

/** The functions of the binding. Those taking `out` write into it and return undefined; without it they return a new tensor. */
export interface NativeBinding {
  fromData(data: ArrayBufferView, shape: number[], dtype: string): T;
  toData(t: T): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  item(t: T): number;
  shape(t: T): number[];
  dtype(t: T): string;
  dispose(t: T): void;
  zeros(shape: number[], dtype: string): T;
  ones(shape: number[], dtype: string): T;
  full(shape: number[], value: number, dtype: string): T;
  empty(shape: number[], dtype: string): T;
  arange(start: number, end: number, step: number, dtype: string): T;
  to(t: T, dtype: string): T;
  clone(t: T): T;

  requiresGrad(t: T): boolean;
  setRequiresGrad(t: T, value: boolean): void;
  grad(t: T): T | undefined;
  clearGrad(t: T): void;
  backward(t: T, gradient?: T): void;
  detach(t: T): T;
  setGradEnabled(enabled: boolean): boolean;
  /** Turns this thread's CPU autocast on or off, casting to `dtype`; returns whether it was on. */
  setAutocastCpu(enabled: boolean, dtype: 'bfloat16'): boolean;
  clearAutocastCache(): void;

  add(a: T, b: TOrNumber, alpha?: number): T;
  sub(a: T, b: TOrNumber, alpha?: number): T;
  mul(a: T, b: TOrNumber): T;
  div(a: T, b: TOrNumber): T;
  pow(a: T, b: TOrNumber): T;
  eq(a: T, b: TOrNumber): T;
  lt(a: T, b: TOrNumber): T;
  gt(a: T, b: TOrNumber): T;
  minimum(a: T, b: T): T;
  matmul(a: T, b: T): T;
  baddbmm(input: T, batch1: T, batch2: T, out?: T): T | undefined;
  neg(t: T): T;
  exp(t: T): T;
  log(t: T): T;
  sqrt(t: T): T;
  abs(t: T): T;
  floor(t: T): T;
  round(t: T): T;
  relu(t: T): T;
  silu(t: T): T;
  sigmoid(t: T): T;
  tanh(t: T): T;
  logicalNot(t: T): T;
  clamp(t: T, min?: number, max?: number): T;
  where(cond: T, a: T, b: T): T;
  maskedFill(t: T, mask: T, value: number): T;
  leakyRelu(t: T, slope: number): T;
  gelu(t: T, approximate?: string): T;
  softmax(t: T, dim: number): T;
  logSoftmax(t: T, dim: number): T;
  dropout(t: T, p: number, train: boolean): T;

  sum(t: T, dims?: number[], keepdim?: boolean): T;
  mean(t: T, dims?: number[], keepdim?: boolean): T;
  amax(t: T, dims: number[] | undefined, keepdim: boolean, out?: T): T | undefined;
  amin(t: T, dims: number[] | undefined, keepdim: boolean, out?: T): T | undefined;
  argmax(t: T, dim?: number, keepdim?: boolean): T;
  var(t: T, dims: number[] | undefined, unbiased: boolean, keepdim?: boolean): T;
  logsumexp(t: T, dims: number[], keepdim: boolean): T;
  cumsum(t: T, dim: number): T;

  reshape(t: T, shape: number[]): T;
  view(t: T, shape: number[]): T;
  permute(t: T, dims: number[]): T;
  transpose(t: T, a: number, b: number): T;
  contiguous(t: T): T;
  unsqueeze(t: T, dim: number): T;
  squeeze(t: T, dim: number): T;
  expand(t: T, shape: number[]): T;
  flatten(t: T, start: number, end: number): T;
  cat(ts: T[], dim: number): T;
  stack(ts: T[], dim: number): T;
  slice(t: T, dim: number, start: number, end: number, step: number): T;
  indexSelect(t: T, dim: number, index: T, out?: T): T | undefined;
  gather(t: T, dim: number, index: T): T;
  flip(t: T, dims: number[]): T;
  pad(t: T, pad: number[], mode: string, value?: number): T;

  linear(x: T, weight: T, bias?: T): T;
  conv2d(x: T, weight: T, bias: T | undefined, stride: number[], padding: number[], dilation: number[], groups: number): T;
  toMkldnn(t: T): T;
  toDense(t: T): T;
  mkldnnConvWeight(weight: T, padding: number[], stride: number[], dilation: number[], groups: number): T;
  mkldnnConv2d(x: T, weight: T, bias: T | undefined, padding: number[], stride: number[], dilation: number[], groups: number): T;
  batchNorm(
    x: T,
    weight: T | undefined,
    bias: T | undefined,
    runningMean: T | undefined,
    runningVar: T | undefined,
    training: boolean,
    momentum: number,
    eps: number,
  ): T;
  maxPool2d(x: T, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): T;
  avgPool2d(x: T, kernel: number[], stride: number[], padding: number[], ceilMode: boolean, countIncludePad: boolean): T;
  adaptiveAvgPool2d(x: T, size: number[]): T;
  interpolate(x: T, size: number[], mode: string, alignCorners: boolean, antialias: boolean): T;
  affineGrid(theta: T, size: number[], alignCorners: boolean): T;
  gridSample(x: T, grid: T, mode: string, paddingMode: string, alignCorners: boolean): T;

  addInPlace(a: T, b: TOrNumber, alpha?: number): void;
  mulInPlace(a: T, b: TOrNumber): void;
  addcmul(self: T, t1: T, t2: T, out?: T, value?: number): T | undefined;
  addcdiv(self: T, t1: T, t2: T, out?: T, value?: number): T | undefined;
  lerpInPlace(a: T, end: T, weight: number): void;
  adamStep(
    param: T,
    grad: T,
    expAvg: T,
    expAvgSq: T,
    l2Decay: number,
    decayFactor: number,
    beta1: number,
    beta2: number,
    biasCorrection2Sqrt: number,
    eps: number,
    stepSize: number,
  ): void;
  divInPlace(a: T, b: TOrNumber): void;
  clampInPlace(t: T, min?: number, max?: number): void;
  absInPlace(t: T): void;
  floorInPlace(t: T): void;
  copyInPlace(dst: T, src: T): void;
  fillInPlace(t: T, value: number): void;

  generator(seed: number): GeneratorHandle;
  rand(shape: number[], gen: GeneratorHandle, dtype: string): T;
  randn(shape: number[], gen: GeneratorHandle, dtype: string): T;
  randint(low: number, high: number, shape: number[], gen: GeneratorHandle): T;
  randperm(n: number, gen: GeneratorHandle): T;
  multinomial(probs: T, samples: number, replacement: boolean, gen: GeneratorHandle): T;
  bernoulli(probs: T, gen: GeneratorHandle): T;
  manualSeed(seed: number): void;

  setNumThreads(n: number): void;
  getNumThreads(): number;
  version(): string;
  cpuCacheStats(): CpuCacheStats;
  emptyCpuCache(): void;
  externalMemory(): number;
  liveStorages(): number;

  // c10d (native/src/distributed.cc): what waits on peers returns a promise.
  tcpStore(host: string, port: number, isServer: boolean, timeoutMs: number): Promise<StoreHandle>;
  storePort(store: StoreHandle): number;
  prefixStore(store: StoreHandle, prefix: string): StoreHandle;
  storeAdd(store: StoreHandle, key: string, amount: number): Promise<number>;
  closeStore(store: StoreHandle): void;
  processGroupGloo(
    store: StoreHandle,
    rank: number,
    worldSize: number,
    timeoutMs: number,
    device: GlooDevice,
    deviceName?: string,
  ): Promise<ProcessGroupHandle>;
  setSequenceNumber(group: ProcessGroupHandle): Promise<void>;
  destroyProcessGroup(group: ProcessGroupHandle): void;
  allreduce(group: ProcessGroupHandle, t: T, op: ReduceOp): Promise<void>;
  broadcast(group: ProcessGroupHandle, t: T, root: number): Promise<void>;
  allgather(group: ProcessGroupHandle, outputs: T[], input: T): Promise<void>;
  barrier(group: ProcessGroupHandle): Promise<void>;
  /** Blocking and differentiable: the sum over the ranks, whose gradient is the sum of theirs. */
  allreduceAutograd(group: ProcessGroupHandle, t: T): T;
}

/** The binding's cache of large freed tensor blocks (native/src/cpu_allocator.cc), in bytes. */
export interface CpuCacheStats {
  liveBytes: number;
  cachedBytes: number;
  /** Peak of live + cached: what large tensor blocks have added to the process's RSS. */
  peakBytes: number;
  /** Peak of live large blocks. */
  peakLiveBytes: number;
  /** Live + cached is kept within this: 5/4 of the peak of bytes live blocks were asked for, over the recent window. */
  capBytes: number;
  /** The window: the last `windowRequests` to twice that many large requests. */
  windowRequests: number;
  /** Large requests served by a cached block (of their size or up to 1/8 larger). */
  hits: number;
  /** The other large requests: mapped anew, or (past the cap) served by a larger cached block or a grown one. */
  misses: number;
  /** Requests of at least this many bytes are cached; 0 when disabled (RETINAGRADE_CPU_CACHE=0). */
  minBytes: number;
  /** Bytes newly mapped (so page-faulted in) for large blocks, in all: what the cache did not save. */
  grownBytes: number;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function loadBinding(): NativeBinding {
  // OpenMP threads that spin while waiting make libtorch 5-20x slower whenever another process
  // wants the same cores (measured: bench/augment on a busy 2-core machine), and threads that
  // sleep at once cost a few percent on an idle one. So: spin briefly (20,000 rounds, ~0.2 ms),
  // then sleep (BENCHMARKS.md), unless the user chose. libgomp reads the process environment
  // once, when the binding first loads it, so only the main thread can set these: a worker
  // thread's process.env is a private copy. (A process whose first load is in a worker thread
  // runs with libgomp's defaults, unless its environment sets them.)
  if (isMainThread && process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
    process.env.GOMP_SPINCOUNT = '20000';
  }
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return nodeGypBuild(join(packageRoot, 'native')) as NativeBinding;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `retinagrade: the libtorch binding could not be loaded (${reason}).\n` +
        `It is built for one Node ABI (this is Node ${process.version}, ABI ${process.versions.modules}). ` +
        `Rebuild it with \`npm run build:native\` (needs Debian's libtorch-dev and libdnnl-dev, or LIBTORCH=/path/to/libtorch).`,
    );
  }
}

export const native: NativeBinding = loadBinding();
