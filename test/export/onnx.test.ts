// The exported ONNX graphs: Debian's python3-onnx checker accepts them, and onnxruntime-node gives
// the probabilities our forward pass gives on the 400 RetinaMNIST test images (within 1e-4), for
// each architecture and an ensemble, with both input styles; a run trained by `train` (so with
// calibration.json) gives predict's calibrated probabilities.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GRADE_NAMES } from '../../src/data/grades.js';
import { toTensor } from '../../src/data/preprocess.js';
import { takeRange } from '../../src/data/training-data.js';
import { exportRun, type InputStyle } from '../../src/export/onnx.js';
import { predictProbabilities } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { calibrated } from '../../src/model/run-calibration.js';
import { LossConfigSchema, ModelConfigSchema, type ModelConfig } from '../../src/nn/index.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import * as torch from '../../src/torch/index.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { train } from '../../src/train/run.js';
import { testSplits } from '../helpers/test-splits.js';
import { untrainedRun } from '../helpers/untrained-run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const python = process.env.PYTHON ?? '/usr/bin/python3'; // Debian's, with python3-onnx (scripts/setup.sh)
const work = mkdtempSync(join(tmpdir(), 'retinagrade-onnx-'));

const testSplit = testSplits(dataDir);

/** ONNX's own checker, with shape inference (full_check). */
function check(file: string): void {
  const code = 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)';
  execFileSync(python, ['-c', code, file], { stdio: 'pipe' });
}

async function runOnnx(file: string, input: ort.Tensor): Promise<Float32Array> {
  const runtime = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
  try {
    const { probabilities } = await runtime.run({ image: input });
    return probabilities!.data as Float32Array;
  } finally {
    await runtime.release();
  }
}

const largestDifference = (a: Float32Array, b: Float32Array): number => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

/** Our probabilities (calibrated as `predict` gives them) and onnxruntime's for the test split fed in `style`. */
async function compare(runDir: string, style: InputStyle): Promise<{ ours: Float32Array; theirs: Float32Array }> {
  const opened = openRun(runDir);
  const size = opened.modelConfig.inputSize;
  const test = testSplit(size);
  const file = join(work, `${style}-${Math.random().toString(36).slice(2)}.onnx`);
  exportRun(runDir, file, { input: style });
  check(file);
  const n = test.count;
  let ours: Float32Array;
  let input: ort.Tensor;
  const images = takeRange(test, 0, n);
  if (style === 'tensor') {
    ours = Float32Array.from(calibrated(predictProbabilities(opened.model, opened.objective, images), opened.calibration));
    input = new ort.Tensor('float32', images.data() as Float32Array, [n, 3, size, size]);
  } else {
    // The split's pixels at the model's size, NHWC (the file's own bytes at its size).
    const pixels = torch.tidy(
      () => images.add(1).mul(127.5).round().clamp(0, 255).permute([0, 2, 3, 1]).contiguous().to('uint8').data() as Uint8Array,
    );
    const x = toTensor(pixels, n, size, 3);
    ours = Float32Array.from(calibrated(predictProbabilities(opened.model, opened.objective, x), opened.calibration));
    x.dispose();
    input = new ort.Tensor('uint8', pixels, [n, size, size, 3]);
  }
  opened.model.dispose();
  images.dispose();
  const theirs = await runOnnx(file, input);
  expect(theirs.length).toBe(ours.length);
  return { ours, theirs };
}

const config = (name: 'cnn' | 'resnet18' | 'resnet50', extra: object = {}): ModelConfig =>
  ModelConfigSchema.parse({ name, inputSize: 28, width: 8, numClasses: 5, ...extra });
const run = (modelConfig: ModelConfig, ensemble = 1, metrics?: object): string =>
  untrainedRun(ensemble, { modelConfig, metrics, randomNorm: { seed: 2, images: takeRange(testSplit(modelConfig.inputSize), 0, 64) } });

describe('onnxruntime-node agrees with predict within 1e-4 on the 400 test images', () => {
  it.each([
    ['the compact CNN', config('cnn'), 1],
    ['ResNet-18', config('resnet18'), 1],
    ['ResNet-50', config('resnet50'), 1],
    ['ResNet-18 at 64 px (7x7 stem, max-pool)', config('resnet18', { inputSize: 64 }), 1],
    ['an ensemble of 3 compact CNNs, one graph', config('cnn'), 3],
  ])(
    '%s, tensor and raw-pixel inputs',
    async (_, modelConfig, ensemble) => {
      const runDir = run(modelConfig, ensemble);
      for (const style of ['tensor', 'pixels'] as const) {
        const { ours, theirs } = await compare(runDir, style);
        expect(largestDifference(ours, theirs), style).toBeLessThan(1e-4);
        // Not a degenerate model: the grade probabilities differ between images.
        const first = ours.filter((_, i) => i % GRADE_NAMES.length === 0);
        expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(0.01);
      }
    },
    60_000,
  );
});

describe('a calibrated run (trained by train, with calibration.json)', () => {
  it("exports the probabilities predict gives: at the run's temperature", async () => {
    const outDir = join(work, 'trained');
    const trainConfig = RunConfigSchema.parse({ model: { width: 8 }, epochs: 1, ensemble: 1, seed: 5 });
    await train({ config: trainConfig, outDir, dataDir, say: () => {} });
    const opened = openRun(outDir);
    const temperature = opened.calibration?.temperature;
    opened.model.dispose();
    expect(temperature).toBeDefined();
    // A temperature of 1 would not tell a tempered graph from an untempered one.
    expect(Math.abs(temperature! - 1)).toBeGreaterThan(0.01);
    for (const style of ['tensor', 'pixels'] as const) {
      const { ours, theirs } = await compare(outDir, style);
      expect(largestDifference(ours, theirs), style).toBeLessThan(1e-4);
    }
  }, 120_000);
});

describe('the exported file', () => {
  it('has a dynamic batch and the metadata a user needs', async () => {
    const metrics = { test: { acc: 0.5, auc: 0.7, qwk: 0.4 } };
    const runDir = run(config('cnn'), 2, metrics);
    const file = join(work, 'meta.onnx');
    const summary = exportRun(runDir, file, { input: 'pixels', opset: 13 });
    expect(summary).toMatchObject({ opset: 13, input: 'pixels', ensemble: 2 });
    const runtime = await ort.InferenceSession.create(file);
    expect(runtime.inputNames).toEqual(['image']);
    expect(runtime.outputNames).toEqual(['probabilities']);
    const one = await runtime.run({ image: new ort.Tensor('uint8', new Uint8Array(28 * 28 * 3).fill(90), [1, 28, 28, 3]) });
    const three = await runtime.run({ image: new ort.Tensor('uint8', new Uint8Array(3 * 28 * 28 * 3).fill(90), [3, 28, 28, 3]) });
    expect(one.probabilities!.dims).toEqual([1, 5]);
    expect(three.probabilities!.dims).toEqual([3, 5]);
    await runtime.release();
    const props = execFileSync(
      python,
      ['-c', 'import onnx, sys, json; print(json.dumps({p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}))', file],
      { encoding: 'utf8' },
    );
    const meta = JSON.parse(props);
    expect(meta.notice).toBe(NOT_FOR_CLINICAL_USE);
    expect(JSON.parse(meta.grade_names)).toEqual([...GRADE_NAMES]);
    expect(meta.input_size).toBe('28');
    expect(meta.input).toMatch(/uint8 \[batch, 28, 28, 3\]/);
    expect(meta.normalization).toBe('x / 127.5 - 1 per RGB channel (pixels 0-255 to [-1, 1])');
    expect(JSON.parse(meta.test_metrics)).toEqual(metrics.test);
    expect(meta.ensemble).toBe('2');
    expect(meta.temperature).toBe('1'); // a run without calibration.json
  });

  it('runs in onnxruntime at the newest opset offered too', async () => {
    const file = join(work, 'opset21.onnx');
    exportRun(run(config('cnn')), file, { opset: 21 });
    const runtime = await ort.InferenceSession.create(file);
    const { probabilities } = await runtime.run({ image: new ort.Tensor('float32', new Float32Array(3 * 28 * 28), [1, 3, 28, 28]) });
    expect(probabilities!.dims).toEqual([1, 5]);
    await runtime.release();
  });

  it('refuses what has no ONNX form, and keeps what was there', () => {
    const ordinal = { modelConfig: config('cnn', { outputs: GRADE_NAMES.length - 1 }), loss: LossConfigSchema.parse({ kind: 'ordinal' }) };
    const runDir = untrainedRun(1, ordinal);
    const file = join(work, 'kept.onnx');
    writeFileSync(file, 'earlier');
    expect(() => exportRun(runDir, file)).toThrow(/CumulativeOrdinal, which has no ONNX form yet/);
    expect(() => exportRun(untrainedRun(1), file, { opset: 11 })).toThrow(/--opset 11 is not supported: expected one of 13, 14/);
    expect(readFileSync(file, 'utf8')).toBe('earlier');
  });
});
