// interop/retinagrade_torch.py (PyTorch's own layers, torchvision's ResNet blocks) loads a run's
// best.safetensors by its parameter names and gives the probabilities our forward pass gives, on
// the first 100 RetinaMNIST test images (enough to tell a wrong layer; fewer keeps PyTorch's side
// short), for each architecture and an ensemble.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { takeRange } from '../../src/data/training-data.js';
import { predictProbabilities } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { ModelConfigSchema } from '../../src/nn/index.js';
import { testSplits } from '../helpers/test-splits.js';
import { untrainedRun } from '../helpers/untrained-run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const script = resolve(import.meta.dirname, '../../interop/retinagrade_torch.py');
/** Debian's python3-torch (scripts/setup.sh); PYTHON names another interpreter that has torch. */
const python = process.env.PYTHON ?? '/usr/bin/python3';

const testSplit = testSplits(dataDir);

/** Test images compared: a wrong weight or layer shows on every image. */
const IMAGES = 100;

/** Largest absolute difference between our probabilities and PyTorch's for `runDir` on the first IMAGES test images. */
function largestDifference(runDir: string): number {
  const opened = openRun(runDir);
  const images = takeRange(testSplit(opened.modelConfig.inputSize), 0, IMAGES);
  const ours = predictProbabilities(opened.model, opened.objective, images);
  opened.model.dispose();
  const dir = mkdtempSync(join(tmpdir(), 'retinagrade-interop-'));
  const x = images.data() as Float32Array;
  writeFileSync(join(dir, 'x.f32'), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  images.dispose();
  execFileSync(python, [script, runDir, join(dir, 'x.f32'), String(IMAGES), join(dir, 'p.f32')], { stdio: 'pipe' });
  const bytes = readFileSync(join(dir, 'p.f32'));
  const theirs = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  expect(theirs.length).toBe(IMAGES * 5);
  expect(theirs.length).toBe(ours.length);
  // Not a degenerate model: its probabilities differ between images.
  expect(Math.max(...ours.filter((_, i) => i % 5 === 0)) - Math.min(...ours.filter((_, i) => i % 5 === 0))).toBeGreaterThan(0.01);
  return Math.max(...ours.map((p, i) => Math.abs(p - theirs[i]!)));
}

const config = (name: 'cnn' | 'resnet18' | 'resnet50', extra: object = {}) =>
  ModelConfigSchema.parse({ name, inputSize: 28, width: 8, numClasses: 5, ...extra });

describe('PyTorch loads best.safetensors and agrees within 1e-4 on 100 test images', () => {
  it.each([
    ['the compact CNN', config('cnn'), 1],
    ['the compact CNN with a stride-2 stem', config('cnn', { stemStride: 2 }), 1],
    ['ResNet-18', config('resnet18'), 1],
    ["ResNet-18 at 64 px (torchvision's 7x7 stem and max-pool)", config('resnet18', { inputSize: 64 }), 1],
    ['ResNet-50', config('resnet50'), 1],
    ['an ensemble of 3 compact CNNs', config('cnn'), 3],
  ])(
    '%s',
    (_, modelConfig, ensemble) => {
      const run = untrainedRun(ensemble, {
        modelConfig,
        randomNorm: { seed: 1, images: takeRange(testSplit(modelConfig.inputSize), 0, 64) },
      });
      expect(largestDifference(run)).toBeLessThan(1e-4);
    },
    60_000,
  );
});
