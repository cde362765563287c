// Where a batch's augmentation time goes, at 1 thread by default: parts of the pipeline of
// bench/augment/run.ts timed on their own, on one random batch and one set of parameters, and
// libtorch's grid_sample from Python on tensors of the same shapes, for comparison.
//
//   RETINAGRADE_THREADS=1 npx tsx bench/augment/breakdown.ts [--size 64] [--batch 128] [--augment datasheet|default]
//
// --augment: the datasheet's five transforms (default), or the default recipe's milder ones.
// Each line: the median over 7 repetitions of the mean time of 10 calls. Parts overlap (the
// whole includes the parts). "geometry only" is applyAugment with every colour factor at
// identity; "colour only" with every geometric parameter at identity, which still includes a
// clone and the shift back to [-1, 1] (two passes over the batch that the whole pipeline folds
// into the warp). "gridSample alone" samples a uniformly random grid.
import { spawnSync } from 'node:child_process';
import { PEER_PYTHON } from '../common.js';
import { parseArgs } from 'node:util';
import * as torch from '../../src/torch/index.js';
import {
  applyAugment,
  datasheetAugment,
  identityParams,
  sampleParams,
  type AugmentConfig,
  type SampleParams,
} from '../../src/data/augment/index.js';
import { toTensor } from '../../src/data/preprocess.js';
import { RunConfigSchema } from '../../src/train/config.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '128' },
    augment: { type: 'string', default: 'datasheet' },
  },
});
const configs: Record<string, AugmentConfig | false> = { datasheet: datasheetAugment, default: RunConfigSchema.parse({}).augment };
const config = configs[args.augment];
if (!config) throw new Error('--augment must be datasheet or default');
const [size, batch] = [Number(args.size), Number(args.batch)];
const threads = torch.getNumThreads();

const gen = new torch.Generator(0);
const bytes = torch.tidy(() => gen.randint(0, 256, [batch, size, size, 3]).to('uint8').data() as Uint8Array);
const x = torch.keep(toTensor(bytes, batch, size, 3));
const params = sampleParams(batch, size, size, config, gen);
const identity = identityParams(size, size);
const geometryOnly = params.map((p): SampleParams => ({ ...p, brightness: 1, contrast: 1, saturation: 1, hue: 0 }));
const colourOnly = params.map(
  (p): SampleParams => ({ ...p, flip: false, angle: 0, crop: identity.crop, translate: identity.translate, scale: 1 }),
);
const grid = torch.keep(gen.uniform([batch, size, size, 2], -1, 1));

function report(name: string, run: () => void): void {
  const means: number[] = [];
  for (let repetition = -1; repetition < 7; repetition++) {
    const began = performance.now();
    for (let call = 0; call < 10; call++) torch.tidy(run);
    if (repetition >= 0) means.push((performance.now() - began) / 10); // the first is a warm-up
  }
  console.log(`${name.padEnd(48)} ${means.sort((a, b) => a - b)[3]!.toFixed(2)} ms`);
}

/** PyTorch's F.grid_sample on random tensors of the same shapes, timed the same way. */
function peerGridSample(mode: 'bilinear' | 'nearest'): string {
  const script = `
import time, torch, torch.nn.functional as F
torch.set_num_threads(${threads})
x = torch.rand(${batch}, 3, ${size}, ${size}) * 2 - 1
grid = torch.rand(${batch}, ${size}, ${size}, 2) * 2 - 1
means = []
for repetition in range(-1, 7):
    began = time.perf_counter()
    for call in range(10):
        F.grid_sample(x, grid, mode="${mode}", padding_mode="zeros", align_corners=False)
    if repetition >= 0:
        means.append((time.perf_counter() - began) / 10 * 1000)
print(sorted(means)[3])`;
  const result = spawnSync(PEER_PYTHON, ['-c', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`peer failed (exit ${result.status}): ${result.stderr}`);
  return Number(result.stdout.trim()).toFixed(2);
}

console.log(`one batch of ${batch} images ${size}x${size}, ${args.augment} augmentation, ${threads} thread(s)`);
report('toTensor (uint8 HWC -> float NCHW)', () => void toTensor(bytes, batch, size, 3));
report('sampleParams', () => void sampleParams(batch, size, size, config, gen));
report('applyAugment, bilinear warp', () => void applyAugment(x, params, 'bilinear'));
report('applyAugment, nearest warp', () => void applyAugment(x, params, 'nearest'));
report('  geometry only, bilinear', () => void applyAugment(x, geometryOnly, 'bilinear'));
report('    gridSample alone, bilinear', () => void torch.gridSample(x, grid, { mode: 'bilinear' }));
report('    gridSample alone, nearest', () => void torch.gridSample(x, grid, { mode: 'nearest' }));
report('  colour only', () => void applyAugment(x, colourOnly));
report(
  '    hue shift alone',
  () =>
    void applyAugment(
      x,
      colourOnly.map((p) => ({ ...p, brightness: 1, contrast: 1, saturation: 1 })),
    ),
);
report(
  '    brightness, contrast, saturation alone',
  () =>
    void applyAugment(
      x,
      colourOnly.map((p) => ({ ...p, hue: 0 })),
    ),
);
console.log(`${'PyTorch F.grid_sample, bilinear / nearest'.padEnd(48)} ${peerGridSample('bilinear')} / ${peerGridSample('nearest')} ms`);
