// `retinagrade export` through the installed command: the file it writes runs in onnxruntime-node
// and carries the run's test scores; bad flags are refused with the exit code 1 or commander's.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { untrainedRun } from '../helpers/untrained-run.js';

const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-export-'));

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [join(root, 'bin', 'retinagrade.js'), ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('retinagrade export', () => {
  it('writes a graph onnxruntime runs, for an ensemble, with raw-pixel input', async () => {
    const run = untrainedRun(3, { metrics: { test: { acc: 0.5, auc: 0.75, qwk: 0.25 } } });
    const out = join(work, 'ensemble.onnx');
    const exported = cli(['export', '--model', run, '--out', out, '--input', 'pixels']);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^wrote .*ensemble\.onnx \(0\.\d MB, opset 17, input 'pixels'\): cnn at 28x28, an ensemble of 3\n/);
    expect(exported.stdout).toContain('not for clinical use');
    const runtime = await ort.InferenceSession.create(out);
    const { probabilities } = await runtime.run({
      image: new ort.Tensor('uint8', new Uint8Array(2 * 28 * 28 * 3).fill(70), [2, 28, 28, 3]),
    });
    expect(probabilities!.dims).toEqual([2, 5]);
    const sums = [0, 1].map((row) => [...(probabilities!.data as Float32Array).slice(5 * row, 5 * row + 5)].reduce((a, b) => a + b));
    for (const sum of sums) expect(sum).toBeCloseTo(1, 5);
    await runtime.release();
  });

  it('refuses an unknown opset, input style or run, naming it', () => {
    const run = untrainedRun(1);
    const out = join(work, 'refused.onnx');
    const opset = cli(['export', '--model', run, '--out', out, '--opset', '9']);
    expect(opset.code).not.toBe(0);
    expect(opset.stderr).toMatch(/--opset <n>' argument '9' is invalid\. expected one of 13, 14, 15/);
    const style = cli(['export', '--model', run, '--out', out, '--input', 'rgb']);
    expect(style.code).not.toBe(0);
    expect(style.stderr).toMatch(/Allowed choices are tensor, pixels/);
    const missing = cli(['export', '--model', join(work, 'nothing'), '--out', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nothing is not a finished run directory/);
    expect(existsSync(out)).toBe(false);
  });
});
