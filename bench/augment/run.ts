// Batched augmentation (ours) vs torchvision's per-sample PIL pipeline (bench/augment/peer.py),
// both from uint8 HWC images to an augmented float batch in [-1, 1], same images, same thread
// count, alternating a few rounds because these shared machines drift between runs.
//
//   npx tsx bench/augment/run.ts [--count 1024] [--size 64] [--batch 128] [--rounds 3] [--interpolation bilinear,nearest]
//
// Ours runs once per round for each interpolation listed (in reverse order every other round).
// Our composed warp resamples once where torchvision resamples three times (nearest for rotation
// and affine, bilinear for the crop), so neither mode is torchvision's exactly: both are reported
// (fidelity.ts measures which is closer).
//
// Threads: RETINAGRADE_THREADS (default: every core); the peer gets the same torch.set_num_threads.
import { spawnSync } from 'node:child_process';
import { PEER_PYTHON } from '../common.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as torch from '../../src/torch/index.js';
import { augment, datasheetAugment, type AugmentConfig, type Interpolation } from '../../src/data/augment/index.js';
import { toTensor } from '../../src/data/preprocess.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1024' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    interpolation: { type: 'string', default: 'bilinear,nearest' },
  },
});
const interpolations = args.interpolation.split(',') as Interpolation[];
if (!interpolations.every((mode) => mode === 'bilinear' || mode === 'nearest')) {
  throw new Error('--interpolation must list bilinear and/or nearest');
}
const [count, size, batch, rounds] = [args.count, args.size, args.batch, args.rounds].map(Number) as [number, number, number, number];
const threads = torch.getNumThreads();
const imageBytes = size * size * 3;

const images = torch.tidy(() => new torch.Generator(0).randint(0, 256, [count, size, size, 3]).to('uint8').data() as Uint8Array);
const dir = mkdtempSync(join(tmpdir(), 'retinagrade-bench-augment-'));
const imagesFile = join(dir, 'images.u8');
writeFileSync(imagesFile, images);

function runOurs(config: AugmentConfig, gen: torch.Generator, first: number, last: number): void {
  for (let start = first; start < last; start += batch) {
    const n = Math.min(batch, last - start);
    const bytes = images.subarray(start * imageBytes, (start + n) * imageBytes);
    torch.tidy(() => {
      augment(toTensor(bytes, n, size, 3), config, gen);
    });
  }
}

function oursImagesPerSecond(interpolation: Interpolation): number {
  const config: AugmentConfig = { ...datasheetAugment, interpolation };
  const gen = new torch.Generator(0);
  runOurs(config, gen, 0, Math.min(batch, count)); // warm-up
  const began = process.hrtime.bigint();
  runOurs(config, gen, 0, count);
  return count / (Number(process.hrtime.bigint() - began) / 1e9);
}

function peerImagesPerSecond(): number {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'peer.py');
  const result = spawnSync(PEER_PYTHON, [script, imagesFile, String(count), String(size), String(batch), String(threads)], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`peer failed (exit ${result.status}): ${result.stderr}`);
  return (JSON.parse(result.stdout.trim().split('\n').pop()!) as { imagesPerSecond: number }).imagesPerSecond;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

console.log(
  `augmentation, datasheet's five transforms: ${count} random uint8 images ${size}x${size}, batch ${batch}, ${threads} thread(s)`,
);
const ours = new Map<Interpolation, number[]>(interpolations.map((mode) => [mode, []]));
const peer: number[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const line: string[] = [];
    // Each round reverses the order of our modes, so neither always runs first.
    const modes = round % 2 === 1 ? interpolations : [...interpolations].reverse();
    for (const mode of modes) {
      const results = ours.get(mode)!;
      results.push(oursImagesPerSecond(mode));
      line.push(`ours (${mode} warp) ${results.at(-1)!.toFixed(0)} img/s`);
    }
    peer.push(peerImagesPerSecond());
    console.log(`round ${round}: ${line.join(', ')}, torchvision per-sample PIL ${peer.at(-1)!.toFixed(0)} img/s`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const peerMedian = median(peer);
for (const [mode, results] of ours) {
  const oursMedian = median(results);
  const ratio = (oursMedian / peerMedian).toFixed(2);
  console.log(`median, ${mode} warp: ours ${oursMedian.toFixed(0)} img/s, peer ${peerMedian.toFixed(0)} img/s, ratio ${ratio}x`);
}
