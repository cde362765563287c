// Access to torch_reference.json, PyTorch's outputs written by test/fixtures/torch/make_fixtures.py.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { DType, Tensor } from '../../src/torch/index.js';
import type { AdamOptions, SgdOptions } from '../../src/optim/index.js';

export interface RefTensor {
  shape: number[];
  data: number[];
}
type Pair = [number, number];

export interface TorchReference {
  torch_version: string;
  conv2d: {
    x: RefTensor;
    cases: {
      name: string;
      weight: RefTensor;
      bias: RefTensor;
      stride: Pair;
      padding: Pair;
      dilation: Pair;
      groups: number;
      out: RefTensor;
    }[];
  };
  batch_norm: Record<
    'x' | 'weight' | 'bias' | 'running_mean' | 'running_var' | 'train_out' | 'train_running_mean' | 'train_running_var' | 'eval_out',
    RefTensor
  > & {
    momentum: number;
    eps: number;
  };
  pooling: {
    x: RefTensor;
    max_pool2d: { kernel: Pair; stride: Pair; padding: Pair; dilation: number; ceil_mode: boolean; out: RefTensor }[];
    avg_pool2d: { kernel: Pair; stride: Pair; padding: Pair; ceil_mode: boolean; count_include_pad: boolean; out: RefTensor }[];
    adaptive_avg_pool2d: { size: Pair; out: RefTensor }[];
  };
  affine_grid: { theta: RefTensor; size: [number, number, number, number]; cases: { align_corners: boolean; grid: RefTensor }[] };
  grid_sample: {
    x: RefTensor;
    grid: RefTensor;
    cases: { mode: 'bilinear' | 'nearest'; padding_mode: 'zeros' | 'border' | 'reflection'; align_corners: boolean; out: RefTensor }[];
  };
  interpolate: {
    x: RefTensor;
    cases: { size: Pair; mode: 'bilinear' | 'nearest'; align_corners: boolean; antialias: boolean; out: RefTensor }[];
  };
  optim: {
    problem: { A: number[][]; b: number[]; K: number[][]; p0: number[]; p1: number[][] };
    cases: {
      name: string;
      kind: 'sgd' | 'adam' | 'adamw';
      options: SgdOptions & AdamOptions;
      trajectory: { p0: number[]; p1: number[] }[];
    }[];
  };
  clip_grad_norm: { max_norm: number; grads: RefTensor[]; total_norm: number; clipped: RefTensor[] }[];
  schedules: {
    multistep: { options: { baseLr: number; milestones: number[]; gamma: number }; lrs: number[] };
    one_cycle: {
      options: { maxLr: number; totalSteps: number; pctStart?: number; divFactor?: number; finalDivFactor?: number };
      lrs: number[];
    }[];
  };
  random: {
    seed: number;
    weights: RefTensor;
    probs: RefTensor;
    sequence: Record<string, RefTensor>;
    global_seed: number;
    dropout_ones_16_p05: RefTensor;
  };
}

export const reference = JSON.parse(
  readFileSync(new URL('../fixtures/torch/torch_reference.json', import.meta.url), 'utf8'),
) as TorchReference;

export const fromRef = (ref: RefTensor, dtype: DType = 'float32'): Tensor => torch.tensor(ref.data, ref.shape, dtype);

/** Asserts equal shapes and every element within `tolerance` (absolute). */
export function expectClose(actual: Tensor, expected: RefTensor, tolerance = 1e-5): void {
  expect(actual.shape).toEqual(expected.shape);
  const values = actual.toArray();
  const worst = values.reduce((max, v, i) => Math.max(max, Math.abs(v - expected.data[i]!)), 0);
  expect(worst).toBeLessThanOrEqual(tolerance);
}
