// Training augmentation, batched on tensors, with the semantics of the datasheet's torchvision
// pipeline (applied per sample in this order):
//
//   RandomHorizontalFlip(0.5), RandomRotation(45), RandomResizedCrop(size, (0.6, 1), (3/4, 4/3)),
//   ColorJitter(0.5, 0.5, 0.5, 0.1), RandomAffine(0, translate (0.1, 0.1), scale (0.8, 1.2))
//
// Parameters are drawn per sample from torchvision's distributions (same ranges, same crop
// rejection sampling, same integer rounding), from one seeded generator (not torchvision's stream). The four geometric
// transforms of a sample are composed into one 2x3 affine matrix and the whole batch is resampled
// once (one sampling grid, as affineGrid would make it, and gridSample). Colour jitter runs as a
// few whole-group tensor operations per stage, in place (see applyAugment and colorJitter). Where
// this differs from running torchvision per sample:
// - Colour jitter runs before the warp rather than between crop and affine. Jitter is per pixel,
//   so the only differences are that contrast's mean is taken over the whole source image, and
//   that areas filled in by rotation or translation stay black (torchvision's contrast would
//   lift rotation's black corners towards the mean).
// - One interpolation for the composed warp (bilinear by default) where torchvision resamples
//   three times (nearest for rotation and affine, bilinear for the crop).
// - Colour jitter uses torchvision's tensor kernels (float HSV, float grayscale mean), not its
//   PIL ones (8-bit HSV), with the arithmetic regrouped (blends as f * img + constant + weighted
//   grayscale, the hue from arithmetic masks): equal up to float32 rounding (a few 1e-6).
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
  // Work in [0, 2], i.e. x + 1: twice torchvision's [0, 1] range. Black is 0 there, which is
  // what gridSample's zero padding fills in, and every operation below (blends, clamps, the HSV
  // hue shift, the warp) commutes exactly with a factor of two (a power of two: no float
  // rounding changes), so the result is exactly twice the [0, 1] computation, without the two
  // passes that scaling to [0, 1] and back would cost.
  //
  // Everything up to the warp runs in place in reused scratch tensors (see scratchFor): only the
  // returned batch is new memory.
  const allocated = scratchFor(n, channels, height, width);
  return torch.tidy(() => {
    const scratch = firstSamples(allocated, n);
    let image: torch.Tensor; // [0, 2], original sample order
    if (colour) {
      // Colour jitter on the batch sorted into groups by the stage at which a sample shifts hue
      // (contiguous rows, so every operation of a group is on a plain view), then back to the
      // original order. With one group (all shift hue at the same stage, or none does: the
      // default recipe) the batch's own order is the groups' and neither copy is needed.
      const groups = groupByHueStage(params);
      if (groups.size === 1) {
        const [[hueStage]] = groups;
        image = scratch.image.copyInPlace(x);
        colorJitter(image, scratch.planes, params, hueStage!);
      } else {
        const order = [...groups.values()].flat();
        const sorted = x.indexSelect(0, indexTensor(order), scratch.sorted);
        let start = 0;
        for (const [hueStage, members] of groups) {
          const end = start + members.length;
          colorJitter(sorted.slice(0, start, end), scratch.planes.slice(1, start, end), members.map((i) => params[i]!), hueStage);
          start = end;
        }
        const position = new Array<number>(n);
        order.forEach((sample, k) => (position[sample] = k));
        image = sorted.indexSelect(0, indexTensor(position), scratch.image);
      }
    } else {
      image = scratch.image.copyInPlace(x).addInPlace(1);
    }
    const result = geometric ? warp(image, params, interpolation, scratch.grid) : image.clone();
    return result.addInPlace(-1);
  });
}

/**
 * Scratch tensors for a batch shape, kept between calls: fresh memory is expensive here (each
 * new block is page-faulted in, and then is not in cache), and glibc does not reliably hand a
 * freed tensor block back for the next same-sized tensor in this process, so a batch that
 * allocates its intermediates runs several times slower than one that reuses them. One set is
 * kept, for the latest image shape and the largest batch seen with it (a smaller batch, such as
 * an epoch's last, uses its first rows): at batch 128 and 64x64, 28 MiB.
 */
interface Scratch {
  readonly key: string;
  /** Batch size the tensors were made for. */
  readonly capacity: number;
  /** [n, C, H, W]: the batch sorted into hue groups, during colour jitter. */
  readonly sorted: torch.Tensor;
  /** [n, C, H, W]: the jittered batch in the original order, the warp's input. */
  readonly image: torch.Tensor;
  /** [PLANES, n, 1, H, W]: per-pixel temporaries of colour jitter, one contiguous plane each. */
  readonly planes: torch.Tensor;
  /** [n, 2, H, W]: the sampling grid, planar (see samplingGrid). */
  readonly grid: torch.Tensor;
}
const PLANES = 6;
let scratch: Scratch | undefined;

function scratchFor(n: number, channels: number, height: number, width: number): Scratch {
  const key = [channels, height, width].join('x');
  if (scratch?.key === key && scratch.capacity >= n) return scratch;
  if (scratch) for (const t of [scratch.sorted, scratch.image, scratch.planes, scratch.grid]) t.dispose();
  scratch = {
    key,
    capacity: n,
    sorted: torch.keep(torch.empty([n, channels, height, width])),
    image: torch.keep(torch.empty([n, channels, height, width])),
    planes: torch.keep(torch.empty([PLANES, n, 1, height, width])),
    grid: torch.keep(torch.empty([n, 2, height, width])),
  };
  return scratch;
}

/** Views of the first n samples of each scratch tensor (each still contiguous per sample and plane). */
function firstSamples(all: Scratch, n: number): Scratch {
  if (all.capacity === n) return all;
  return {
    ...all,
    capacity: n,
    sorted: all.sorted.slice(0, 0, n),
    image: all.image.slice(0, 0, n),
    planes: all.planes.slice(1, 0, n),
    grid: all.grid.slice(0, 0, n),
  };
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

/** Resamples every image through its composed backward map, in one grid (built in `grid`, [n, 2, H, W]) for the batch. */
function warp(image: torch.Tensor, params: readonly SampleParams[], interpolation: Interpolation, grid: torch.Tensor): torch.Tensor {
  const [, , height, width] = batchShape(image);
  return torch.gridSample(image, samplingGrid(params, height, width, grid), { mode: interpolation, paddingMode: 'zeros', alignCorners: false });
}

// Added to the x coordinate of output pixels that must come out black: 1e4 half-widths is far
// outside the frame, so every tap of the sampler falls in the zero padding and reads exactly 0.
const OUTSIDE = 1e4;

/**
 * The sampling grid [n, H, W, 2] of the composed backward maps, as affineGrid(theta) would build
 * it (align_corners false: pixel centres at (2i + 1) / size - 1): grid = theta . (X, Y, 1). The
 * map is affine, so the grid is a column part (a X + c, d X + f), which depends on the output
 * column only, plus a row part (b Y, e Y): both are tiny and made here, and two broadcast passes
 * over `planar` ([n, 2, H, W]) build it, instead of affineGrid's new [n, H, W, 3] base grid and
 * batched matmul. Returns the grid as the [n, H, W, 2] view that gridSample takes.
 *
 * torchvision applies RandomAffine to the cropped frame, so whatever a shift or zoom-out brings in
 * from outside that frame is black. The composed map would instead read real pixels from around
 * the crop box (or from beyond the rotated frame when there is no crop), so output pixels whose
 * affine source falls outside [0, size) (PIL's test, on the pixel centre) get a grid point far
 * outside the image, which zero padding turns into exact black. The region is a product of
 * columns and rows, so the shift goes into the column and row parts.
 */
function samplingGrid(params: readonly SampleParams[], height: number, width: number, planar: torch.Tensor): torch.Tensor {
  const n = params.length;
  const columns = new Float32Array(n * 2 * width); // [n, 2, 1, W]: (a X + c, d X + f)
  const rows = new Float32Array(n * 2 * height); // [n, 2, H, 1]: (b Y, e Y)
  const inside = (outputIndex: number, size: number, shift: number, scale: number): boolean => {
    const source = (outputIndex + 0.5 - size / 2 - shift) / scale + size / 2;
    return source >= 0 && source < size;
  };
  params.forEach((p, i) => {
    const m = backwardMap(p, height, width);
    // affineGrid works in normalized coordinates (-1..1 over the frame), so pixel offsets are
    // divided by half the size and the aspect ratio enters the cross terms.
    const [a, b, c] = [m[0], (m[1] * height) / width, (2 * m[2]) / width];
    const [d, e, f] = [(m[3] * width) / height, m[4], (2 * m[5]) / height];
    const masked = !isAffineIdentity(p);
    for (let col = 0; col < width; col++) {
      const xn = (2 * col + 1) / width - 1;
      const off = masked && !inside(col, width, p.translate[0], p.scale) ? OUTSIDE : 0;
      columns[(i * 2) * width + col] = a * xn + c + off;
      columns[(i * 2 + 1) * width + col] = d * xn + f;
    }
    for (let row = 0; row < height; row++) {
      const yn = (2 * row + 1) / height - 1;
      const off = masked && !inside(row, height, p.translate[1], p.scale) ? OUTSIDE : 0;
      rows[(i * 2) * height + row] = b * yn + off;
      rows[(i * 2 + 1) * height + row] = e * yn;
    }
  });
  torch.tidy(() => {
    planar.copyInPlace(torch.tensor(columns, [n, 2, 1, width]).expand([n, 2, height, width]));
    planar.addInPlace(torch.tensor(rows, [n, 2, height, 1]));
  });
  // gridSample reads an [n, H, W, 2] grid with any strides, and this planar layout (x and y each
  // contiguous along W) as fast as an interleaved one; building it planar avoids broadcasting
  // over pairs, which is several times slower.
  return planar.permute([0, 2, 3, 1]);
}

// --- colour ---

function isColourIdentity(p: SampleParams): boolean {
  return p.brightness === 1 && p.contrast === 1 && p.saturation === 1 && p.hue === 0;
}

// torchvision's rgb_to_grayscale weights (R, G, B). They sum to 0.9999, not 1.
const GRAY: readonly [number, number, number] = [0.2989, 0.587, 0.114];

/**
 * The samples grouped by the stage (0-3) at which they shift hue, or -1 for no shift. Within a
 * group every stage is the same kind of work for all samples (blends, or the hue shift).
 */
function groupByHueStage(params: readonly SampleParams[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  params.forEach((p, i) => {
    const key = p.hue === 0 ? -1 : p.jitterOrder.indexOf('hue');
    const members = groups.get(key);
    if (members) members.push(i);
    else groups.set(key, [i]);
  });
  return groups;
}

/**
 * ColorJitter in place on `image`, a group of samples that all shift hue at stage `hueStage`
 * (-1: none), each sample in its own random order; the other three stages are blends (see
 * blendStage). `planes` ([PLANES, k, 1, H, W]) holds per-pixel temporaries.
 *
 * `image` comes in as x (in [-1, 1]) and leaves in [0, 2]: the first operation also adds the 1
 * (folded into a blend's constant).
 */
function colorJitter(image: torch.Tensor, planes: torch.Tensor, params: readonly SampleParams[], hueStage: number): void {
  let shifted = false;
  for (let stage = 0; stage < JITTER_OPS.length; stage++) {
    if (stage === hueStage) {
      if (!shifted) image.addInPlace(1);
      shifted = true;
      shiftHue(image, planes, params.map((p) => p.hue));
      continue;
    }
    const ops = params.map((p) => p.jitterOrder[stage]!);
    if (ops.some((op, i) => op !== 'hue' && params[i]![op] !== 1)) {
      blendStage(image, plane(planes, 0), shifted ? 0 : 1, params, ops);
      shifted = true;
    }
  }
  if (!shifted) image.addInPlace(1);
}

/**
 * One blend stage, in place on `image + shift` (shift is 1 while the image is still in [-1, 1]).
 * For each sample, with gray = w . rgb (torchvision's grayscale weights w) and f its factor:
 *   brightness: f * img
 *   contrast:   f * img + (1 - f) * mean(gray(img))
 *   saturation: f * img + (1 - f) * gray(img)
 *   hue:        img (a zero shift: samples with a nonzero one have their own group)
 * then clamp to [0, 2]: torchvision's blend (clamp(f * img + (1 - f) * target, 0, bound)), up to
 * float32 rounding of the sums. That is f * img plus a per-sample multiple of the grayscale image
 * plus a per-sample constant: for the whole group one small batched matmul for the weighted
 * grayscale (into `work`, [k, 1, H, W]), one fused multiply-add and one clamp; or, when no sample
 * of the stage blends with its grayscale image, a multiply, an add and the clamp, in place.
 */
function blendStage(image: torch.Tensor, work: torch.Tensor, shift: number, params: readonly SampleParams[], ops: readonly JitterOp[]): void {
  const [n, , height, width] = batchShape(image);
  torch.tidy(() => {
    const factorOf = (i: number): number => (ops[i] === 'hue' ? 1 : params[i]![ops[i]!]);
    // Per-channel means, for the contrast samples' mean of the grayscale image.
    const means = ops.some((op, i) => op === 'contrast' && factorOf(i) !== 1)
      ? (image.mean([2, 3]).data() as Float32Array)
      : undefined;
    const factors = new Float32Array(n);
    const grayWeights = new Float32Array(n * 3); // per-sample multiple of w
    const constants = new Float32Array(n);
    const graySum = GRAY[0] + GRAY[1] + GRAY[2];
    ops.forEach((op, i) => {
      const f = factorOf(i);
      factors[i] = f;
      let constant = f * shift; // f * (image + shift) = f * image + f * shift
      if (op === 'saturation') {
        GRAY.forEach((weight, c) => (grayWeights[i * 3 + c] = (1 - f) * weight));
        constant += (1 - f) * graySum * shift; // gray(image + shift) = w . image + sum(w) * shift
      } else if (op === 'contrast' && means) {
        const meanGray = GRAY.reduce((sum, weight, c) => sum + weight * (means[i * 3 + c]! + shift), 0);
        constant += (1 - f) * meanGray;
      }
      constants[i] = constant;
    });
    const pixels = image.view([n, 3, height * width]);
    const perSample = (values: Float32Array): torch.Tensor => torch.tensor(values, [n, 1, 1]);
    if (grayWeights.some((w) => w !== 0)) {
      // What each sample adds to f * image, [n, 1, H * W]: its constant plus its grayscale term.
      const added = torch.baddbmm(perSample(constants), torch.tensor(grayWeights, [n, 1, 3]), pixels, work.view([n, 1, height * width]));
      torch.addcmul(added, perSample(factors), pixels, pixels);
    } else {
      // f * image + constant in two in-place passes: one addcmul of two broadcast operands would
      // leave libtorch's vectorized loop, several times slower.
      pixels.mulInPlace(perSample(factors)).addInPlace(perSample(constants));
    }
    image.clampInPlace(0, 2);
  });
}

const indexTensor = (indices: number[]): torch.Tensor => torch.tensor(BigInt64Array.from(indices, BigInt), [indices.length]);

/** Plane j of a [PLANES, k, 1, H, W] scratch tensor: a contiguous [k, 1, H, W] view. */
const plane = (planes: torch.Tensor, j: number): torch.Tensor => planes.slice(0, j, j + 1).squeeze(0);

/** One value per channel as a [1, 3, 1, 1] tensor. */
const perChannel = (values: [number, number, number]): torch.Tensor => torch.tensor(values, [1, 3, 1, 1]);

/** The R, G, B planes of an NCHW batch, as [n, 1, H, W] views. */
const rgb = (image: torch.Tensor): [torch.Tensor, torch.Tensor, torch.Tensor] => [
  image.slice(1, 0, 1),
  image.slice(1, 1, 2),
  image.slice(1, 2, 3),
];

/**
 * torchvision's adjust_hue, in place on `image` (in [0, 2], or any range: the shift is
 * invariant to adding a constant and scaling), sample i shifted by shifts[i] turns: RGB -> HSV,
 * h = (h + shift) mod 1, HSV -> RGB. A hue shift keeps each pixel's max and min, so only h is
 * computed, in sixths of a turn (H in [0, 6)), and the way back scales the fully saturated
 * colour of the new hue into [min, max]:
 * (R, G, B) = min + chroma * clamp(|H - 3| - 1, 2 - |H - 2|, 2 - |H - 4|; 0, 1).
 * Every step is in place, in the planes of `planes` ([PLANES, k, 1, H, W]); x + y * z (addcmul)
 * and x + y / z (addcdiv) do two operations in one pass.
 */
function shiftHue(image: torch.Tensor, planes: torch.Tensor, shifts: number[]): void {
  if (shifts.every((s) => s === 0)) return;
  torch.tidy(() => {
    const [max, min, chroma, hue, a, b] = [0, 1, 2, 3, 4, 5].map((j) => plane(planes, j)) as [
      torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
    ];
    const [red, green, blue] = rgb(image);
    const scalar = (v: number): torch.Tensor => torch.tensor([v], [1]);
    const minusOne = scalar(-1);
    const difference = (x: torch.Tensor, y: torch.Tensor, into: torch.Tensor): torch.Tensor => torch.addcmul(x, y, minusOne, into);
    image.max(1, true, max);
    image.min(1, true, min);
    difference(max, min, chroma);
    // H * chroma from whichever channel is the max: g - b (red), b - r + 2 chroma (green),
    // r - g + 4 chroma (blue), selected arithmetically because where() is several times slower
    // than a multiply here:
    //   fromRedOrGreen = fromGreen + notGreen * (fromRed - fromGreen),
    //   numerator      = fromBlue + notBlue * (fromRedOrGreen - fromBlue),
    // with notX = min(1, (max - x) * 2^100): 0 where x is the max, else 1 (any difference
    // above 2^-100, i.e. all but subnormal ones). A mask of 0 selects its value exactly, a
    // mask of 1 the other up to one rounding. Where two channels tie for the max, their
    // formulas give the same hue (mod 6), so the choice among them does not matter
    // (torchvision prefers red, then green, then blue); and for a near-tie below 2^-100 the
    // two formulas differ by about that difference, so a fractional mask costs nothing either.
    // (max - x) * 2^100 is computed as max * 2^100 - x * 2^100: scaling by a power of two is
    // exact, so that is the same float.
    const big = 2 ** 100;
    max.mulInPlace(big);
    const notMax = (channel: torch.Tensor): torch.Tensor => torch.addcmul(max, channel, scalar(-big), b).clampInPlace(undefined, 1);
    difference(blue, red, a).addInPlace(chroma, 2); // fromGreen
    difference(green, blue, hue).addInPlace(a, -1); // fromRed - fromGreen
    torch.addcmul(a, hue, notMax(green), hue); // fromRedOrGreen
    difference(red, green, a).addInPlace(chroma, 4); // fromBlue
    hue.addInPlace(a, -1);
    torch.addcmul(a, hue, notMax(blue), hue); // numerator
    // Divide by chroma (plus 2^-100, which changes no nonzero chroma of these images and gives
    // gray pixels, whose numerator is 0, a hue of 0) and add the shift. chroma + 2^-100 is a copy
    // and an in-place add: as one operation with two broadcast scalars it would leave libtorch's
    // vectorized loop. The division and the shift are one pass.
    b.copyInPlace(chroma).addInPlace(2 ** -100);
    torch.addcdiv(torch.tensor(Float32Array.from(shifts, (s) => 6 * s), [shifts.length, 1, 1, 1]), hue, b, hue);
    // H mod 6 as H - 6 floor(H / 6) (remainder() is several times slower). Rounding in H / 6 can
    // put a result a rounding error outside [0, 6); the colour formulas below are continuous
    // there, so that moves the colour by a rounding error too.
    b.copyInPlace(hue).mulInPlace(1 / 6).floorInPlace();
    torch.addcmul(hue, b, scalar(-6), hue);
    // The three channels at once, written over the image:
    // min + chroma * clamp(|H - (3, 2, 4)| * (1, -1, -1) + (-1, 2, 2), 0, 1).
    image
      .copyInPlace(hue.expand(image.shape))
      .addInPlace(perChannel([-3, -2, -4]))
      .absInPlace()
      .mulInPlace(perChannel([1, -1, -1]))
      .addInPlace(perChannel([-1, 2, 2]))
      .clampInPlace(0, 1);
    torch.addcmul(min, chroma, image, image);
  });
}

function batchShape(x: torch.Tensor): [number, number, number, number] {
  if (x.ndim !== 4 || x.dtype !== 'float32') {
    throw new RangeError(`augment: expected a float32 NCHW batch, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  return x.shape as [number, number, number, number];
}
