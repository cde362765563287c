// Numeric parity of the engine's vision kernels with PyTorch (reference values from
// test/fixtures/torch/make_fixtures.py), float32, to 1e-5.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { expectClose, fromRef, reference } from './reference.js';

describe(`parity with PyTorch ${reference.torch_version}`, () => {
  it('conv2d with stride, padding, dilation and groups', () =>
    torch.tidy(() => {
      const { x, cases } = reference.conv2d;
      for (const c of cases) {
        const out = torch.conv2d(fromRef(x), fromRef(c.weight), fromRef(c.bias), {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          groups: c.groups,
        });
        expectClose(out, c.out);
      }
    }));

  it('batchNorm in training updates the running statistics; in eval it uses them', () =>
    torch.tidy(() => {
      const ref = reference.batch_norm;
      const [x, weight, bias] = [fromRef(ref.x), fromRef(ref.weight), fromRef(ref.bias)];
      const runningMean = fromRef(ref.running_mean);
      const runningVar = fromRef(ref.running_var);
      const options = { weight, bias, runningMean, runningVar, momentum: ref.momentum, eps: ref.eps };

      expectClose(torch.batchNorm(x, { ...options, training: true }), ref.train_out);
      expectClose(runningMean, ref.train_running_mean);
      expectClose(runningVar, ref.train_running_var);

      runningMean.copyInPlace(fromRef(ref.running_mean));
      runningVar.copyInPlace(fromRef(ref.running_var));
      expectClose(torch.batchNorm(x, { ...options, training: false }), ref.eval_out);
      expect(runningMean.toArray()).toEqual(fromRef(ref.running_mean).toArray()); // eval leaves them alone
    }));

  it('maxPool2d, avgPool2d and adaptiveAvgPool2d', () =>
    torch.tidy(() => {
      const { x, max_pool2d, avg_pool2d, adaptive_avg_pool2d } = reference.pooling;
      const input = fromRef(x);
      for (const c of max_pool2d) {
        const out = torch.maxPool2d(input, c.kernel, { stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil_mode });
        expectClose(out, c.out);
      }
      for (const c of avg_pool2d) {
        const out = torch.avgPool2d(input, c.kernel, {
          stride: c.stride,
          padding: c.padding,
          ceilMode: c.ceil_mode,
          countIncludePad: c.count_include_pad,
        });
        expectClose(out, c.out);
      }
      for (const c of adaptive_avg_pool2d) expectClose(torch.adaptiveAvgPool2d(input, c.size), c.out);
    }));

  it('affineGrid and gridSample in every mode and padding', () =>
    torch.tidy(() => {
      const { theta, size, cases } = reference.affine_grid;
      for (const c of cases) expectClose(torch.affineGrid(fromRef(theta), size, c.align_corners), c.grid);

      const sample = reference.grid_sample;
      for (const c of sample.cases) {
        const out = torch.gridSample(fromRef(sample.x), fromRef(sample.grid), {
          mode: c.mode,
          paddingMode: c.padding_mode,
          alignCorners: c.align_corners,
        });
        expectClose(out, c.out);
      }
    }));

  it('interpolate: bilinear (with and without alignCorners, antialiased) and nearest', () =>
    torch.tidy(() => {
      const { x, cases } = reference.interpolate;
      for (const c of cases) {
        const out = torch.interpolate(fromRef(x), c.size, { mode: c.mode, alignCorners: c.align_corners, antialias: c.antialias });
        expectClose(out, c.out);
      }
    }));
});
