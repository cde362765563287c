// ColorJitter (brightness, contrast, saturation, hue, in each sample's own order) as a few
// whole-group tensor operations per stage, in place in scratch tensors.
import * as torch from '../../torch/index.js';
import { JITTER_OPS, type JitterOp, type SampleParams } from './params.js';
import type { Scratch } from './scratch.js';

export function isColourIdentity(p: SampleParams): boolean {
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
 * ColorJitter of the RGB batch x (in [-1, 1]) with per-sample parameters, into `scratch.image`
 * (returned, in [0, 2]: see applyAugment), using the rest of `scratch` for its intermediates.
 *
 * The batch is sorted into groups by the stage at which a sample shifts hue (contiguous rows, so
 * every operation of a group is on a plain view), then put back in the original order. With one
 * group (all shift hue at the same stage, or none does: the default recipe) the batch's own order
 * is the groups' and neither copy is needed.
 */
export function colorJitter(x: torch.Tensor, params: readonly SampleParams[], scratch: Scratch): torch.Tensor {
  const groups = groupByHueStage(params);
  if (groups.size === 1) {
    const [[hueStage]] = groups;
    const image = scratch.image.copyInPlace(x);
    jitterGroup(image, scratch.planes, params, hueStage!);
    return image;
  }
  const order = [...groups.values()].flat();
  const sorted = x.indexSelect(0, indexTensor(order), scratch.sorted);
  let start = 0;
  for (const [hueStage, members] of groups) {
    const end = start + members.length;
    jitterGroup(
      sorted.slice(0, start, end),
      scratch.planes.slice(1, start, end),
      members.map((i) => params[i]!),
      hueStage,
    );
    start = end;
  }
  const position = new Array<number>(params.length);
  order.forEach((sample, k) => (position[sample] = k));
  return sorted.indexSelect(0, indexTensor(position), scratch.image);
}

/**
 * ColorJitter in place on `image`, a group of samples that all shift hue at stage `hueStage`
 * (-1: none), each sample in its own random order; the other three stages are blends (see
 * blendStage). `planes` ([PLANES, k, 1, H, W]) holds per-pixel temporaries.
 *
 * `image` comes in as x (in [-1, 1]) and leaves in [0, 2]: the first operation also adds the 1
 * (folded into a blend's constant).
 */
function jitterGroup(image: torch.Tensor, planes: torch.Tensor, params: readonly SampleParams[], hueStage: number): void {
  let shifted = false;
  for (let stage = 0; stage < JITTER_OPS.length; stage++) {
    if (stage === hueStage) {
      if (!shifted) image.addInPlace(1);
      shifted = true;
      shiftHue(
        image,
        planes,
        params.map((p) => p.hue),
      );
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
function blendStage(
  image: torch.Tensor,
  work: torch.Tensor,
  shift: number,
  params: readonly SampleParams[],
  ops: readonly JitterOp[],
): void {
  const [n, , height, width] = image.shape;
  torch.tidy(() => {
    const factorOf = (i: number): number => (ops[i] === 'hue' ? 1 : params[i]![ops[i]!]);
    // Per-channel means, for the contrast samples' mean of the grayscale image.
    const means = ops.some((op, i) => op === 'contrast' && factorOf(i) !== 1) ? (image.mean([2, 3]).data() as Float32Array) : undefined;
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
      torch.Tensor,
      torch.Tensor,
      torch.Tensor,
      torch.Tensor,
      torch.Tensor,
      torch.Tensor,
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
    torch.addcdiv(
      torch.tensor(
        Float32Array.from(shifts, (s) => 6 * s),
        [shifts.length, 1, 1, 1],
      ),
      hue,
      b,
      hue,
    );
    // H mod 6 as H - 6 floor(H / 6) (remainder() is several times slower). Rounding in H / 6 can
    // put a result a rounding error outside [0, 6); the colour formulas below are continuous
    // there, so that moves the colour by a rounding error too.
    b.copyInPlace(hue)
      .mulInPlace(1 / 6)
      .floorInPlace();
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
