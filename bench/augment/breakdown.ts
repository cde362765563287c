// Where a batch's augmentation time goes, at 1 thread by default: each part of the pipeline of
// bench/augment/run.ts timed on its own, on the same random batch and parameters.
//
//   RETINAGRADE_THREADS=1 npx tsx bench/augment/breakdown.ts [--size 64] [--batch 128]
//
// Each line: the median over 7 repetitions of the mean time of 10 calls. Parts overlap (the
// whole includes the parts): "geometry only" is applyAugment with every colour factor at
// identity, "colour only" with every geometric parameter at identity.
import { parseArgs } from 'node:util';
import * as torch from '../../src/torch/index.js';
import { applyAugment, datasheetAugment, identityParams, sampleParams, type SampleParams } from '../../src/data/augment.js';
import { toTensor } from '../../src/data/preprocess.js';

const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '64' }, batch: { type: 'string', default: '128' } },
});
const [size, batch] = [Number(args.size), Number(args.batch)];
const gen = new torch.Generator(0);
const bytes = torch.tidy(() => gen.randint(0, 256, [batch, size, size, 3]).to('uint8').data() as Uint8Array);
const x = torch.keep(toTensor(bytes, batch, size, 3));
const params = sampleParams(batch, size, size, datasheetAugment, gen);
const identity = identityParams(size, size);
const geometryOnly = params.map((p): SampleParams => ({ ...p, brightness: 1, contrast: 1, saturation: 1, hue: 0 }));
const colourOnly = params.map((p): SampleParams => ({ ...p, flip: false, angle: 0, crop: identity.crop, translate: identity.translate, scale: 1 }));
const grid = torch.keep(gen.uniform([batch, size, size, 2], -1, 1));

function report(name: string, run: () => void): void {
  const means: number[] = [];
  for (let repetition = -1; repetition < 7; repetition++) {
    const began = performance.now();
    for (let call = 0; call < 10; call++) torch.tidy(run);
    if (repetition >= 0) means.push((performance.now() - began) / 10); // the first is a warm-up
  }
  console.log(`${name.padEnd(44)} ${means.sort((a, b) => a - b)[3]!.toFixed(2)} ms`);
}

console.log(`one batch of ${batch} images ${size}x${size}, datasheet augmentation, ${torch.getNumThreads()} thread(s)`);
report('toTensor (uint8 HWC -> float NCHW)', () => void toTensor(bytes, batch, size, 3));
report('sampleParams', () => void sampleParams(batch, size, size, datasheetAugment, gen));
report('applyAugment, bilinear', () => void applyAugment(x, params, 'bilinear'));
report('applyAugment, nearest', () => void applyAugment(x, params, 'nearest'));
report('  geometry only, bilinear', () => void applyAugment(x, geometryOnly, 'bilinear'));
report('    gridSample alone, bilinear', () => void torch.gridSample(x, grid, { mode: 'bilinear' }));
report('    gridSample alone, nearest', () => void torch.gridSample(x, grid, { mode: 'nearest' }));
report('  colour only', () => void applyAugment(x, colourOnly));
report('  colour only, no hue shift', () => void applyAugment(x, colourOnly.map((p) => ({ ...p, hue: 0 }))));
