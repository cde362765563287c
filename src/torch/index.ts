// Public entry of the tensor engine. Loading it sets libtorch's thread count once per process:
// RETINAGRADE_THREADS, else every core (native/src/binding.cc); setNumThreads changes it.
export * from './tensor.js';
export type { CpuCacheStats } from './native.js';
export { tidy, keep } from './scope.js';
export { Generator, manualSeed } from './random.js';
export {
  PRECISIONS,
  atPrecision,
  cpuHasBf16,
  cpuinfoHasBf16,
  resolvePrecision,
  type Precision,
  type ResolvedPrecision,
} from './precision.js';
