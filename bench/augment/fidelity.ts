// How close is our composed warp to torchvision's pipeline? The datasheet's geometric transforms
// (flip, rotation, resized crop, affine) with the same parameters on the same images: ours
// resamples the composed warp once (bilinear or nearest), torchvision resamples per sample on PIL
// images three times (fidelity.py). Colour jitter is off: its kernels match torchvision's up to
// float rounding, and PIL's 8-bit HSV would only add noise to the comparison.
//
//   MEDMNIST_DIR=../shared/data npx tsx bench/augment/fidelity.ts [--count 512] [--size 64] [--seed 0]
//   npx tsx bench/augment/fidelity.ts --photos ../shared/samples [--count 510]
//
// Images: RetinaMNIST's first --count training images, upsampled from 28x28 as training does
// when the file at --size is absent; or with --photos, the fundus photographs in DIR as `predict`
// prepares them, each used count / (number of photos) times. Reported per interpolation: mean
// absolute difference from torchvision's output in 8-bit levels, over all pixels and over the
// pixels inside the fundus disc (the frame is black in both, which would flatter every mode alike).
import { spawnSync } from 'node:child_process';
import { PEER_PYTHON } from '../common.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as torch from '../../src/torch/index.js';
import { applyAugment, datasheetAugment, sampleParams, type AugmentConfig, type Interpolation } from '../../src/data/augment/index.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { takeRange } from '../../src/data/training-data.js';
import { preprocessFundus } from '../../src/data/fundus.js';
import { toTensor } from '../../src/data/preprocess.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '512' },
    size: { type: 'string', default: '64' },
    seed: { type: 'string', default: '0' },
    photos: { type: 'string' },
  },
});
const [count, size, seed] = [args.count, args.size, args.seed].map(Number) as [number, number, number];
const geometryOnly: AugmentConfig = { ...datasheetAugment, colorJitter: { ...datasheetAugment.colorJitter, enabled: false } };

const toBytes = (x: torch.Tensor): Uint8Array =>
  torch.tidy(() => x.add(1).mul(127.5).round().clamp(0, 255).permute([0, 2, 3, 1]).contiguous().to('uint8').data() as Uint8Array);

/** The uint8 HWC images both sides start from. */
async function sourceImages(): Promise<{ images: Uint8Array; description: string }> {
  if (args.photos === undefined) {
    const train = loadRetinaTensors({ size }).train;
    if (count > train.count) throw new Error(`--count ${count}: the training split has ${train.count} images`);
    return { images: toBytes(takeRange(train, 0, count)), description: `${count} RetinaMNIST training images` };
  }
  const files = readdirSync(args.photos)
    .filter((name) => /\.(jpe?g|png|tiff?|webp)$/i.test(name))
    .sort();
  if (files.length === 0) throw new Error(`no photographs in ${args.photos}`);
  const photos = await Promise.all(files.map((name) => preprocessFundus(join(args.photos!, name), size)));
  const images = new Uint8Array(count * size * size * 3);
  for (let i = 0; i < count; i++) images.set(photos[i % photos.length]!.pixels, i * size * size * 3);
  return { images, description: `${files.length} fundus photographs from ${args.photos}, ${count} augmentations` };
}

const { images, description } = await sourceImages();
const x = torch.keep(toTensor(images, count, size, 3));
const params = sampleParams(count, size, size, geometryOnly, new torch.Generator(seed));

const dir = mkdtempSync(join(tmpdir(), 'retinagrade-bench-fidelity-'));
let reference: Uint8Array;
try {
  const [imagesFile, paramsFile, outFile] = ['images.u8', 'params.json', 'out.u8'].map((name) => join(dir, name)) as [
    string,
    string,
    string,
  ];
  writeFileSync(imagesFile, images);
  writeFileSync(paramsFile, JSON.stringify(params));
  const script = join(dirname(fileURLToPath(import.meta.url)), 'fidelity.py');
  const result = spawnSync(PEER_PYTHON, [script, imagesFile, paramsFile, outFile, String(count), String(size)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`torchvision side failed (exit ${result.status}): ${result.stderr}`);
  reference = new Uint8Array(readFileSync(outFile));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// A pixel is inside the disc when torchvision's output there is not near-black: the same mask
// for every mode.
const inside = new Uint8Array(count * size * size);
for (let p = 0; p < inside.length; p++) {
  const level = Math.max(reference[3 * p]!, reference[3 * p + 1]!, reference[3 * p + 2]!);
  inside[p] = level > 10 ? 1 : 0;
}
const meanAbsoluteDifference = (ours: Uint8Array, mask?: Uint8Array): number => {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < ours.length; i++) {
    if (mask && !mask[Math.floor(i / 3)]) continue;
    sum += Math.abs(ours[i]! - reference[i]!);
    n++;
  }
  return sum / n;
};

console.log(`geometric transforms of the datasheet, ${description} at ${size}x${size} (seed ${seed})`);
console.log('mean |ours - torchvision| in 8-bit levels:');
for (const mode of ['bilinear', 'nearest'] as Interpolation[]) {
  const ours = toBytes(torch.tidy(() => applyAugment(x, params, mode)));
  const allPixels = meanAbsoluteDifference(ours).toFixed(2);
  const insideDisc = meanAbsoluteDifference(ours, inside).toFixed(2);
  console.log(`  ${mode.padEnd(8)} warp: all pixels ${allPixels}, inside the disc ${insideDisc}`);
}
