// Public entry of the tensor engine.
import { availableParallelism } from 'node:os';
import { native } from './native.js';

export * from './tensor.js';
export type { CpuCacheStats } from './native.js';
export { tidy, keep } from './scope.js';
export { Generator, manualSeed } from './random.js';

// Debian's libtorch starts with one intra-op thread; default to every core, overridable.
native.setNumThreads(Number(process.env.RETINAGRADE_THREADS) || availableParallelism());
