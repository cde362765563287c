// The precision of a model's heavy ops. bf16 runs convolutions and matrix products in bfloat16
// through ATen's CPU autocast (its policy keeps reductions, losses and batch norm statistics in
// float32; weights stay float32 and are cast per use); fp32 runs everything in float32.
import { readFileSync } from 'node:fs';
import { native } from './native.js';
import type { Tensor } from './tensor.js';

export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * CPU flags of native bf16 dot products. Without them oneDNN emulates bf16 (or falls back to
 * reference kernels), slower than fp32, so bf16 is used only where one of them is present.
 */
const BF16_CPU_FLAGS = ['avx512_bf16', 'amx_bf16'];

/** Whether a /proc/cpuinfo text lists a flag of native bf16 arithmetic. */
export function cpuinfoHasBf16(cpuinfo: string): boolean {
  return cpuinfo.split('\n').some((line) => {
    const [key, value] = line.split(':', 2);
    return (
      key?.trim() === 'flags' &&
      value !== undefined &&
      value
        .trim()
        .split(/\s+/)
        .some((flag) => BF16_CPU_FLAGS.includes(flag))
    );
  });
}

let thisCpuHasBf16: boolean | undefined;
/** Whether this machine's CPU has native bf16 (read once; false where /proc/cpuinfo is unreadable). */
export function cpuHasBf16(): boolean {
  if (thisCpuHasBf16 === undefined) {
    try {
      thisCpuHasBf16 = cpuinfoHasBf16(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      thisCpuHasBf16 = false;
    }
  }
  return thisCpuHasBf16;
}

export interface ResolvedPrecision {
  precision: Precision;
  /** Why the requested precision is not the one used (bf16 on a CPU without it). */
  fallback?: string;
}

/** The precision to run a request at on this CPU: bf16 only where the CPU has it, otherwise fp32 and why. */
export function resolvePrecision(requested: Precision, hasBf16: boolean = cpuHasBf16()): ResolvedPrecision {
  if (requested === 'bf16' && !hasBf16) {
    return {
      precision: 'fp32',
      fallback: `precision bf16 needs a CPU with ${BF16_CPU_FLAGS.join(' or ')} (this one has neither): running in fp32`,
    };
  }
  return { precision: requested };
}

/**
 * Runs `fn` (synchronous: autocast is a state of the calling thread) at `precision` and returns
 * its output as float32, so what follows (losses, softmax, metrics) is float32 either way.
 */
export function atPrecision(precision: Precision, fn: () => Tensor): Tensor {
  if (precision === 'fp32') return fn();
  const wasOn = native.setAutocastCpu(true, 'bfloat16');
  let out: Tensor;
  try {
    out = fn();
  } finally {
    native.setAutocastCpu(wasOn, 'bfloat16');
    // Autocast keeps each weight's bf16 copy until cleared: leaving the outermost region drops
    // them, so the next pass casts the weights the optimizer has updated since.
    if (!wasOn) native.clearAutocastCache();
  }
  if ((out.dtype as string) === 'float32') return out;
  const float = out.float();
  out.dispose();
  return float;
}
