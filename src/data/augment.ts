// Training augmentation, batched on tensors, with the semantics of the datasheet's torchvision
// pipeline (applied per sample in this order):
//
//   RandomHorizontalFlip(0.5), RandomRotation(45), RandomResizedCrop(size, (0.6, 1), (3/4, 4/3)),
//   ColorJitter(0.5, 0.5, 0.5, 0.1), RandomAffine(0, translate (0.1, 0.1), scale (0.8, 1.2))
//
// Parameters are drawn per sample from torchvision's distributions (same ranges, same crop
// rejection sampling, same integer rounding), from one seeded generator (not torchvision's stream). The four geometric
// transforms of a sample are composed into one 2x3 affine matrix and the whole batch is resampled
// once (affineGrid + gridSample). Where this differs from running torchvision per sample:
// - Colour jitter runs before the warp rather than between crop and affine. Jitter is per pixel,
//   so the only differences are that contrast's mean is taken over the whole source image, and
//   that areas filled in by rotation or translation stay black (torchvision's contrast would
//   lift rotation's black corners towards the mean).
// - One interpolation for the composed warp (bilinear by default) where torchvision resamples
//   three times (nearest for rotation and affine, bilinear for the crop).
// - Colour jitter uses torchvision's tensor kernels (float HSV, float grayscale mean), not its
//   PIL ones (8-bit HSV).
// Evaluation applies no augmentation: call this on training batches only.
import * as torch from '../torch/index.js';

export type Interpolation = 'bilinear' | 'nearest';
export type Range = readonly [number, number];

export interface AugmentConfig {
  /** RandomHorizontalFlip(p). */
  readonly horizontalFlip: { readonly enabled: boolean; readonly p: number };
  /** RandomRotation(degrees): counter-clockwise angle uniform in [-degrees, degrees]. */
  readonly rotation: { readonly enabled: boolean; readonly degrees: number };
  /** RandomResizedCrop back to the input size: `scale` is the area fraction, `ratio` width/height. */
  readonly resizedCrop: { readonly enabled: boolean; readonly scale: Range; readonly ratio: Range };
  /** ColorJitter: factors uniform in [max(0, 1 - v), 1 + v]; hue shift uniform in [-hue, hue]. */
  readonly colorJitter: {
    readonly enabled: boolean;
    readonly brightness: number;
    readonly contrast: number;
    readonly saturation: number;
    readonly hue: number;
  };
  /** RandomAffine(degrees 0, translate, scale): shift up to translate * size pixels, zoom in `scale`. */
  readonly affine: { readonly enabled: boolean; readonly translate: Range; readonly scale: Range };
  /** How the composed warp samples the source image. */
  readonly interpolation: Interpolation;
}

/** The datasheet's training augmentation. */
export const datasheetAugment: AugmentConfig = {
  horizontalFlip: { enabled: true, p: 0.5 },
  rotation: { enabled: true, degrees: 45 },
  resizedCrop: { enabled: true, scale: [0.6, 1.0], ratio: [3 / 4, 4 / 3] },
  colorJitter: { enabled: true, brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.1 },
  affine: { enabled: true, translate: [0.1, 0.1], scale: [0.8, 1.2] },
  interpolation: 'bilinear',
};

export type JitterOp = 'brightness' | 'contrast' | 'saturation' | 'hue';
const JITTER_OPS: readonly JitterOp[] = ['brightness', 'contrast', 'saturation', 'hue'];

/** A crop box in pixels of the (flipped, rotated) image, as torchvision's (i, j, h, w). */
export interface CropBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

/** Everything random about one sample's augmentation. Disabled transforms get identity values. */
export interface SampleParams {
  readonly flip: boolean;
  /** Degrees, counter-clockwise. */
  readonly angle: number;
  readonly crop: CropBox;
  /** Whole pixels [dx, dy], right and down. */
  readonly translate: readonly [number, number];
  readonly scale: number;
  readonly brightness: number;
  readonly contrast: number;
  readonly saturation: number;
  readonly hue: number;
  /** The order in which the four colour operations apply (torchvision's randperm(4)). */
  readonly jitterOrder: readonly JitterOp[];
}

/** Parameters that leave an image of this size unchanged. */
export function identityParams(height: number, width: number): SampleParams {
  return {
    flip: false,
    angle: 0,
    crop: { top: 0, left: 0, height, width },
    translate: [0, 0],
    scale: 1,
    brightness: 1,
    contrast: 1,
    saturation: 1,
    hue: 0,
    jitterOrder: JITTER_OPS,
  };
}

// Every sample consumes the same number of uniform draws whether or not a transform is enabled,
// so switching one transform off does not change the parameters the others get for a seed.
const CROP_ATTEMPTS = 10; // torchvision's RandomResizedCrop tries 10 boxes, then crops the centre
// flip, angle, crop (area and ratio per attempt, then top and left), affine (dx, dy, zoom),
// the four jitter factors, and four keys that sort into the jitter order.
const DRAWS_PER_SAMPLE = 1 + 1 + 2 * CROP_ATTEMPTS + 2 + 3 + 4 + 4;

/** Draws the augmentation parameters of `n` images of height x width. */
export function sampleParams(
  n: number,
  height: number,
  width: number,
  config: AugmentConfig,
  gen: torch.Generator,
): SampleParams[] {
  validateAugmentConfig(config);
  const uniforms = torch.tidy(() => gen.uniform([n, DRAWS_PER_SAMPLE], 0, 1, 'float64').data() as Float64Array);
  const identity = identityParams(height, width);
  const { horizontalFlip, rotation, resizedCrop, colorJitter, affine } = config;
  const params: SampleParams[] = [];
  for (let i = 0; i < n; i++) {
    let next = i * DRAWS_PER_SAMPLE;
    const draw = (): number => uniforms[next++];
    const take = (count: number): number[] => Array.from({ length: count }, draw);

    const flip = draw() < horizontalFlip.p && horizontalFlip.enabled;
    const angle = between(draw(), -rotation.degrees, rotation.degrees);
    const crop = sampleCrop(height, width, resizedCrop.scale, resizedCrop.ratio, take(2 * CROP_ATTEMPTS), take(2));
    const [dx, dy, zoom] = take(3);
    const [brightness, contrast, saturation, hue] = take(4);
    const orderKeys = take(4);

    params.push({
      flip,
      angle: rotation.enabled ? angle : 0,
      crop: resizedCrop.enabled ? crop : identity.crop,
      translate: affine.enabled
        ? [
            pythonRound(between(dx, -affine.translate[0] * width, affine.translate[0] * width)),
            pythonRound(between(dy, -affine.translate[1] * height, affine.translate[1] * height)),
          ]
        : identity.translate,
      scale: affine.enabled ? between(zoom, affine.scale[0], affine.scale[1]) : 1,
      brightness: colorJitter.enabled ? jitterFactor(brightness, colorJitter.brightness) : 1,
      contrast: colorJitter.enabled ? jitterFactor(contrast, colorJitter.contrast) : 1,
      saturation: colorJitter.enabled ? jitterFactor(saturation, colorJitter.saturation) : 1,
      hue: colorJitter.enabled ? between(hue, -colorJitter.hue, colorJitter.hue) : 0,
      // Sorting four uniforms gives a uniformly random permutation, like randperm(4).
      jitterOrder: [0, 1, 2, 3].sort((a, b) => orderKeys[a] - orderKeys[b]).map((k) => JITTER_OPS[k]),
    });
  }
  return params;
}

/** Samples parameters from `gen` and applies them: the training-time entry point. */
export function augment(x: torch.Tensor, config: AugmentConfig, gen: torch.Generator): torch.Tensor {
  const [n, , height, width] = batchShape(x);
  return applyAugment(x, sampleParams(n, height, width, config, gen), config.interpolation);
}

/**
 * Applies per-sample parameters to a float32 NCHW batch in [-1, 1]; returns a new tensor of the
 * same shape in [-1, 1]. Work is skipped for stages where every sample's parameters are identity.
 */
export function applyAugment(
  x: torch.Tensor,
  params: readonly SampleParams[],
  interpolation: Interpolation = 'bilinear',
): torch.Tensor {
  const [n, channels, height, width] = batchShape(x);
  if (params.length !== n) throw new RangeError(`applyAugment: ${params.length} parameter sets for a batch of ${n}`);
  const colour = params.some((p) => !isColourIdentity(p));
  const geometric = params.some((p) => !isGeometryIdentity(p, height, width));
  if (colour && channels !== 3) throw new RangeError(`applyAugment: colour jitter needs RGB images, got ${channels} channels`);
  if (!colour && !geometric) return x.clone();
  return torch.tidy(() => {
    // Work in [0, 1]: black is 0 there, which is exactly what gridSample's zero padding fills in.
    let image = x.add(1).mulInPlace(0.5);
    if (colour) image = step(image, (im) => colorJitter(im, params));
    if (geometric) image = step(image, (im) => warp(im, params, interpolation));
    return image.mulInPlace(2).addInPlace(-1);
  });
}

// Every image function below owns its input: it may change it in place or free it. Each step runs
// in its own scope and frees what it no longer needs at once, because a batch-sized tensor is a
// few MB and fresh memory costs page faults that are as slow as the arithmetic; freed blocks are
// reused by the allocator.
function step(input: torch.Tensor, run: (input: torch.Tensor) => torch.Tensor): torch.Tensor {
  const output = torch.tidy(() => run(input));
  if (output !== input) input.dispose();
  return output;
}

/** Throws a RangeError naming the first setting outside its valid range. */
export function validateAugmentConfig(config: AugmentConfig): void {
  const check = (ok: boolean, field: string, expected: string, value: unknown): void => {
    if (!ok) throw new RangeError(`augment.${field} must be ${expected}, got ${JSON.stringify(value)}`);
  };
  const isRange = (r: Range, min: number): boolean => r.length === 2 && r[0] >= min && r[0] <= r[1];
  const { horizontalFlip, rotation, resizedCrop, colorJitter, affine } = config;
  check(horizontalFlip.p >= 0 && horizontalFlip.p <= 1, 'horizontalFlip.p', 'in [0, 1]', horizontalFlip.p);
  check(rotation.degrees >= 0, 'rotation.degrees', '>= 0', rotation.degrees);
  check(isRange(resizedCrop.scale, 0) && resizedCrop.scale[1] <= 1, 'resizedCrop.scale', '[min, max] within [0, 1]', resizedCrop.scale);
  check(isRange(resizedCrop.ratio, Number.MIN_VALUE), 'resizedCrop.ratio', '[min, max] with 0 < min <= max', resizedCrop.ratio);
  for (const key of ['brightness', 'contrast', 'saturation'] as const) {
    check(colorJitter[key] >= 0, `colorJitter.${key}`, '>= 0', colorJitter[key]);
  }
  check(colorJitter.hue >= 0 && colorJitter.hue <= 0.5, 'colorJitter.hue', 'in [0, 0.5]', colorJitter.hue);
  check(affine.translate.every((t) => t >= 0 && t <= 1), 'affine.translate', '[dx, dy] within [0, 1]', affine.translate);
  check(isRange(affine.scale, Number.MIN_VALUE), 'affine.scale', '[min, max] with 0 < min <= max', affine.scale);
  check(['bilinear', 'nearest'].includes(config.interpolation), 'interpolation', "'bilinear' or 'nearest'", config.interpolation);
}

// --- parameter sampling ---

const between = (u: number, low: number, high: number): number => low + u * (high - low);
const jitterFactor = (u: number, amount: number): number => between(u, Math.max(0, 1 - amount), 1 + amount);

/** Python's round(): halves go to the even neighbour. torchvision rounds crop sizes and shifts with it. */
function pythonRound(x: number): number {
  const nearest = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : nearest;
}

/** RandomResizedCrop.get_params: `attempts` holds (area, log-ratio) draw pairs, `position` (top, left). */
function sampleCrop(height: number, width: number, scale: Range, ratio: Range, attempts: number[], position: number[]): CropBox {
  const area = height * width;
  const [logMin, logMax] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let a = 0; a < CROP_ATTEMPTS; a++) {
    const targetArea = area * between(attempts[2 * a], scale[0], scale[1]);
    const aspect = Math.exp(between(attempts[2 * a + 1], logMin, logMax));
    const w = pythonRound(Math.sqrt(targetArea * aspect));
    const h = pythonRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(position[0] * (height - h + 1));
      const left = Math.floor(position[1] * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: the largest centred box whose aspect ratio is inside the allowed range.
  const inRatio = width / height;
  let [w, h] = [width, height];
  if (inRatio < ratio[0]) h = pythonRound(w / ratio[0]);
  else if (inRatio > ratio[1]) w = pythonRound(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

// --- geometry ---

// 2x3 affine maps [a, b, c, d, e, f]: (u, v) -> (a u + b v + c, d u + e v + f), in pixel units
// centred on the image centre, y down. Each transform is described by its backward map (output
// pixel -> where it reads in its input), so a pipeline t1, t2, ..., tk reads the source at
// B1(B2(...Bk(p))).
type Affine = readonly [number, number, number, number, number, number];

function compose(m: Affine, n: Affine): Affine {
  return [
    m[0] * n[0] + m[1] * n[3],
    m[0] * n[1] + m[1] * n[4],
    m[0] * n[2] + m[1] * n[5] + m[2],
    m[3] * n[0] + m[4] * n[3],
    m[3] * n[1] + m[4] * n[4],
    m[3] * n[2] + m[4] * n[5] + m[5],
  ];
}

function backwardMap(p: SampleParams, height: number, width: number): Affine {
  const flip: Affine = [p.flip ? -1 : 1, 0, 0, 0, 1, 0];
  // Counter-clockwise on screen (y down), as torchvision's rotate; the same matrix it builds.
  const radians = (p.angle * Math.PI) / 180;
  const [cos, sin] = [Math.cos(radians), Math.sin(radians)];
  const rotation: Affine = [cos, -sin, 0, sin, cos, 0];
  // The crop box stretched to the full frame: output centre -> box centre.
  const { top, left, height: h, width: w } = p.crop;
  const crop: Affine = [w / width, 0, left + w / 2 - width / 2, 0, h / height, top + h / 2 - height / 2];
  // Forward is p' = scale * p + t about the centre; backward undoes it.
  const [dx, dy] = p.translate;
  const affine: Affine = [1 / p.scale, 0, -dx / p.scale, 0, 1 / p.scale, -dy / p.scale];
  return compose(compose(compose(flip, rotation), crop), affine);
}

function isGeometryIdentity(p: SampleParams, height: number, width: number): boolean {
  const { crop } = p;
  const fullFrame = crop.top === 0 && crop.left === 0 && crop.height === height && crop.width === width;
  return !p.flip && p.angle === 0 && fullFrame && isAffineIdentity(p);
}
const isAffineIdentity = (p: SampleParams): boolean => p.translate[0] === 0 && p.translate[1] === 0 && p.scale === 1;

/** Resamples every image through its composed backward map, in one grid for the batch. */
function warp(image: torch.Tensor, params: readonly SampleParams[], interpolation: Interpolation): torch.Tensor {
  const [n, channels, height, width] = batchShape(image);
  // affineGrid works in normalized coordinates (-1..1 over the frame, align_corners false), so
  // pixel offsets are divided by half the size and the aspect ratio enters the cross terms.
  const theta = new Float32Array(n * 6);
  params.forEach((p, i) => {
    const m = backwardMap(p, height, width);
    theta.set([m[0], (m[1] * height) / width, (2 * m[2]) / width, (m[3] * width) / height, m[4], (2 * m[5]) / height], i * 6);
  });
  const grid = torch.affineGrid(torch.tensor(theta, [n, 2, 3]), [n, channels, height, width], false);
  const warped = torch.gridSample(image, grid, { mode: interpolation, paddingMode: 'zeros', alignCorners: false });
  return params.every(isAffineIdentity) ? warped : warped.mulInPlace(affineCanvasMask(params, height, width));
}

/**
 * torchvision applies RandomAffine to the cropped frame, so whatever a shift or zoom-out brings in
 * from outside that frame is black. The composed map would instead read real pixels from around
 * the crop box (or from beyond the rotated frame when there is no crop); this mask (1 inside the affine's source frame, 0 outside) blacks them out. A
 * pixel is inside when its backward-mapped centre falls in [0, size) as with PIL's sampling.
 */
function affineCanvasMask(params: readonly SampleParams[], height: number, width: number): torch.Tensor {
  const n = params.length;
  const columns = new Float32Array(n * width);
  const rows = new Float32Array(n * height);
  const inside = (outputIndex: number, size: number, shift: number, scale: number): number => {
    const source = (outputIndex + 0.5 - size / 2 - shift) / scale + size / 2;
    return source >= 0 && source < size ? 1 : 0;
  };
  params.forEach((p, i) => {
    for (let x = 0; x < width; x++) columns[i * width + x] = inside(x, width, p.translate[0], p.scale);
    for (let y = 0; y < height; y++) rows[i * height + y] = inside(y, height, p.translate[1], p.scale);
  });
  return torch.tensor(rows, [n, 1, height, 1]).mul(torch.tensor(columns, [n, 1, 1, width]));
}

// --- colour ---

function isColourIdentity(p: SampleParams): boolean {
  return p.brightness === 1 && p.contrast === 1 && p.saturation === 1 && p.hue === 0;
}

/**
 * ColorJitter on [0, 1] images, each sample in its own random order. Brightness, contrast and
 * saturation are all blends and run batched, one per stage; hue is the expensive one, so samples
 * are grouped by the stage at which they shift hue and each group converts to HSV once.
 */
function colorJitter(image: torch.Tensor, params: readonly SampleParams[]): torch.Tensor {
  // Group key: the stage of the hue shift, or -1 when a sample's shift is zero (no HSV round trip).
  const groups = new Map<number, number[]>();
  params.forEach((p, i) => {
    const key = p.hue === 0 ? -1 : p.jitterOrder.indexOf('hue');
    const members = groups.get(key);
    if (members) members.push(i);
    else groups.set(key, [i]);
  });
  if (groups.size === 1) {
    const [hueStage] = groups.keys();
    return jitterGroup(image, params, hueStage);
  }
  const order = [...groups.values()].flat();
  const jittered = [...groups].map(([hueStage, members]) =>
    jitterGroup(image.indexSelect(0, indexTensor(members)), members.map((i) => params[i]), hueStage),
  );
  // Put the samples back in batch order.
  const inverse = new Array<number>(order.length);
  order.forEach((sample, position) => (inverse[sample] = position));
  return torch.cat(jittered, 0).indexSelect(0, indexTensor(inverse));
}

const indexTensor = (indices: number[]): torch.Tensor => torch.tensor(BigInt64Array.from(indices, BigInt), [indices.length]);

function jitterGroup(image: torch.Tensor, params: readonly SampleParams[], hueStage: number): torch.Tensor {
  for (let stage = 0; stage < JITTER_OPS.length; stage++) {
    image = step(image, (im) => (stage === hueStage ? shiftHue(im, params.map((p) => p.hue)) : blendStage(im, params, stage)));
  }
  return image;
}

const factorOf = (p: SampleParams, op: JitterOp): number => (op === 'hue' ? 1 : p[op]);

/** Per-sample scalars as an [n, 1, 1, 1] tensor that broadcasts over an NCHW batch. */
const perSample = (values: number[]): torch.Tensor =>
  torch.tensor(Float32Array.from(values), [values.length, 1, 1, 1]);

/** One value per channel as a [1, 3, 1, 1] tensor. */
const perChannel = (values: [number, number, number]): torch.Tensor => torch.tensor(values, [1, 3, 1, 1]);

/** The R, G, B planes of an NCHW batch, as [n, 1, H, W] views. */
const rgb = (image: torch.Tensor): [torch.Tensor, torch.Tensor, torch.Tensor] => [
  image.slice(1, 0, 1),
  image.slice(1, 1, 2),
  image.slice(1, 2, 3),
];

/**
 * One stage of brightness / contrast / saturation, whichever each sample has at `stage`. All
 * three are torchvision's blend: clamp(f * x + (1 - f) * target, 0, 1), with target 0, the mean
 * of the grayscale image, or the grayscale image. A hue op here means its shift is 0: identity.
 */
function blendStage(image: torch.Tensor, params: readonly SampleParams[], stage: number): torch.Tensor {
  const ops = params.map((p) => p.jitterOrder[stage]);
  const factors = params.map((p, i) => factorOf(p, ops[i]));
  if (factors.every((f) => f === 1)) return image;
  const grayWeight = factors.map((f, i) => (ops[i] === 'saturation' ? 1 - f : 0));
  const meanWeight = factors.map((f, i) => (ops[i] === 'contrast' ? 1 - f : 0));
  let target: torch.Tensor | undefined;
  if (grayWeight.some((w) => w !== 0) || meanWeight.some((w) => w !== 0)) {
    // torchvision's rgb_to_grayscale, 0.2989 R + 0.587 G + 0.114 B, in that order.
    const [r, g, b] = rgb(image);
    const gray = r.mul(0.2989).addInPlace(g, 0.587).addInPlace(b, 0.114);
    const mean = gray.mean([1, 2, 3], true).mulInPlace(perSample(meanWeight));
    target = gray.mulInPlace(perSample(grayWeight)).addInPlace(mean);
  }
  image.mulInPlace(perSample(factors));
  if (target) image.addInPlace(target);
  return image.clamp(0, 1);
}

/**
 * torchvision's adjust_hue: RGB -> HSV, h = (h + shift) mod 1, HSV -> RGB. A hue shift keeps each
 * pixel's max and min, so only h is computed, in sixths of a turn (H in [0, 6)), and the way back
 * scales the fully saturated colour of the new hue into [min, max]:
 * (R, G, B) = min + chroma * clamp(|H - 3| - 1, 2 - |H - 2|, 2 - |H - 4|; 0, 1).
 */
function shiftHue(image: torch.Tensor, shifts: number[]): torch.Tensor {
  if (shifts.every((s) => s === 0)) return image;
  const max = image.max(1, true);
  const min = image.min(1, true);
  const chroma = max.sub(min);
  // Its own scope: the masks and partial results are freed before the batch-sized part below.
  const hue = torch.tidy(() => {
    const [r, g, b] = rgb(image);
    // H * chroma by whichever channel is the max, with torchvision's tie-breaking (red, green, blue).
    const scaledHue = torch.where(
      max.eq(r),
      g.sub(b),
      torch.where(max.eq(g), b.sub(r).addInPlace(chroma, 2), r.sub(g).addInPlace(chroma, 4)),
    );
    // Gray pixels (chroma 0) have a zero numerator and no hue: any positive divisor works. Below
    // 1e-12 the hue comes out wrong, but it is then scaled by that chroma, so the colour is right.
    return scaledHue
      .div(chroma.clamp(1e-12))
      .addInPlace(perSample(shifts.map((s) => 6 * s)))
      .remainder(6);
  });
  const saturated = torch.tidy(() =>
    hue
      .sub(perChannel([3, 2, 4]))
      .abs()
      .mulInPlace(perChannel([1, -1, -1]))
      .addInPlace(perChannel([-1, 2, 2]))
      .clamp(0, 1),
  );
  return saturated.mulInPlace(chroma).addInPlace(min);
}

function batchShape(x: torch.Tensor): [number, number, number, number] {
  if (x.ndim !== 4 || x.dtype !== 'float32') {
    throw new RangeError(`augment: expected a float32 NCHW batch, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  return x.shape as [number, number, number, number];
}
