// One photograph graded by our engine and by onnxruntime-node on the exported model, side by side
// in this process, alternating: the whole grade (decode, disc crop, resize, forward) and the
// forward pass alone at batch 1. Both use the same thread count.
//
//   npx tsx bench/serve/onnx.ts                        # default recipe's model (untrained), 200 rounds
//   npx tsx bench/serve/onnx.ts --model runs/a --rounds 500 --threads 2
//
// Without --model: an untrained ensemble of the default recipe's architecture, as bench/serve/run.ts.
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { openModel } from '../../src/api.js';
import { preprocessFundus } from '../../src/data/fundus.js';
import { exportRun } from '../../src/export/onnx.js';
import { predictProbabilities } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import * as torch from '../../src/torch/index.js';
import { RunConfigSchema, modelConfigOf } from '../../src/train/config.js';
import { untrainedRun } from '../../test/helpers/untrained-run.js';
import { fmt, median, repoRoot, runMain } from '../common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    image: { type: 'string', default: join(repoRoot, '../shared/samples/fundus_a.jpg') },
    rounds: { type: 'string', default: '200' },
    threads: { type: 'string', default: '2' },
  },
});

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const threads = Number(values.threads);
  torch.setNumThreads(threads);
  const config = RunConfigSchema.parse({});
  const runDir = values.model ?? untrainedRun(config.ensemble, { modelConfig: modelConfigOf(config) });
  const onnxFile = join(mkdtempSync(join(tmpdir(), 'retinagrade-bench-onnx-')), 'model.onnx');
  exportRun(runDir, onnxFile, { input: 'pixels' });
  const runtime = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const model = await openModel(runDir);
  const opened = openRun(runDir);
  const size = opened.modelConfig.inputSize;
  const photo = { name: 'photo', bytes: readFileSync(values.image!) };
  const pixels = (await preprocessFundus(photo, size)).pixels;
  const x = torch.keep(torch.tensor(pixels, [1, size, size, 3], 'uint8').permute([0, 3, 1, 2]).float().div(127.5).sub(1));
  const ortInput = new ort.Tensor('uint8', pixels, [1, size, size, 3]);

  const ours = { grade: [] as number[], forward: [] as number[] };
  const onnx = { grade: [] as number[], forward: [] as number[] };
  const startLoad = loadavg()[0]!;
  for (let round = -10; round < rounds; round++) {
    const record = (list: number[], ms: number) => round >= 0 && list.push(ms); // the first 10 warm up
    record(ours.grade, await time(() => model.grade(photo)));
    record(
      onnx.grade,
      await time(async () => {
        const input = new ort.Tensor('uint8', (await preprocessFundus(photo, size)).pixels, [1, size, size, 3]);
        await runtime.run({ image: input });
      }),
    );
    record(ours.forward, await time(() => predictProbabilities(opened.model, opened.objective, x)));
    record(onnx.forward, await time(() => runtime.run({ image: ortInput })));
  }
  const line = (what: string, a: number[], b: number[]) =>
    `${what}: ours ${fmt(median(a))} ms, onnxruntime-node ${fmt(median(b))} ms (median of ${a.length})`;
  process.stdout.write(
    `${opened.modelConfig.name} @${size}, ensemble ${opened.ensemble}, ${threads} threads\n` +
      `${line('whole grade (decode, crop, resize, forward)', ours.grade, onnx.grade)}\n` +
      `${line('forward pass, batch 1', ours.forward, onnx.forward)}\n` +
      `load average ${fmt(startLoad)} -> ${fmt(loadavg()[0]!)}\n`,
  );
  model.dispose();
  opened.model.dispose();
  await runtime.release();
}

runMain(main);
