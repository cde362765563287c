// The gate before a grade: is this a gradable colour fundus photograph like the ones the model
// learned from? Two tests on the model's input, so they hold whatever the cropping:
// - image statistics (mean R, G, B, their differences, colourfulness, brightness spread, the
//   brightness of centre and corners, the strongest straight edge) inside the range the training
//   images span, widened by a margin: refuses solid colours, greyscale and red-free copies, blue or
//   green scenes, and tiled, gridded or checkered pictures;
// - a learned out-of-distribution score in the model's feature space: 1 - cosine similarity of the
//   image's pooled features to its k-th nearest training image (Sun et al., "Out-of-Distribution
//   Detection with Deep Nearest Neighbors", ICML 2022), refused above a threshold set on
//   validation: refuses noise, text, scenes, montages and other images that are not a retina.
// Fitted by train on the training images (threshold on validation), kept in gradability.safetensors,
// read by openRun.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { type SplitSource, takeRange } from '../data/training-data.js';
import { withEval, type FeatureClassifier } from '../nn/index.js';

/** Neighbours: the k-th nearest training image's similarity is the score (Sun et al. use k = 50 of 50,000; 1,080 images here). */
export const NEIGHBOURS = 5;
export interface GateMargins {
  /**
   * Image statistics may fall to this fraction of the training minimum (1: to the minimum), and
   * exceed the training maximum by this fraction of the range; every validation image is always
   * admitted.
   */
  range: number;
  /** The OOD threshold is the highest validation score times this: 120 validation images leave the tail unseen. */
  ood: number;
}
/**
 * Chosen on validation images (out of fold) and a negative set built from validation images, over
 * 3 seeds: bench/quality/gate-margins.ts (RESULTS.md, "The gradability gate's margins").
 */
export const GATE_MARGINS: GateMargins = { range: 1, ood: 2 };

/**
 * Per image, on a 0..1 scale but 'straight edges'. The last four see the layout: a bright disc,
 * dark outside it, brightness that varies with the distance from the centre, and no straight seam
 * across the picture.
 */
export const IMAGE_STATISTICS = [
  'mean red',
  'mean green',
  'mean blue',
  'red - green',
  'green - blue',
  'colourfulness',
  'brightness spread',
  'centre brightness',
  'centre - corner brightness',
  'radial structure',
  'straight edges',
];
/** Radii (as a fraction of half the side) inside which a pixel is "centre", outside which "corner". */
const CENTRE_RADIUS = 0.5;
const CORNER_RADIUS = 1.05;
/** Rings of equal width from the centre to the corners, for 'radial structure'. */
const RINGS = 8;

/**
 * The share of an H x W brightness plane's variance explained by the distance from the centre
 * (between-ring variance over total variance): high for a disc on a dark surround, low for
 * montages, shuffled tiles, gradients across the picture and scenes.
 */
function radialStructure(brightness: Float32Array, ring: Uint8Array): number {
  const sums = new Float64Array(RINGS);
  const counts = new Float64Array(RINGS);
  let total = 0;
  let totalSq = 0;
  for (let p = 0; p < brightness.length; p++) {
    const v = brightness[p]!;
    sums[ring[p]!]! += v;
    counts[ring[p]!]! += 1;
    total += v;
    totalSq += v * v;
  }
  const mean = total / brightness.length;
  const variance = totalSq / brightness.length - mean * mean;
  let between = 0;
  for (let r = 0; r < RINGS; r++) if (counts[r]! > 0) between += counts[r]! * (sums[r]! / counts[r]! - mean) ** 2;
  // A flat picture has no structure at all (and is refused by its brightness spread).
  return variance > 1e-9 ? between / brightness.length / variance : 0;
}

export interface GradabilityGate {
  /** Training images' pooled features, standardized then L2-normalized: N x D. */
  bank: Tensor;
  /** Mean and standard deviation of the training images' pooled features (1 x D each), for standardizing. */
  mean: Tensor;
  std: Tensor;
  /** Refuse above this OOD score (1 - k-th nearest cosine similarity). */
  threshold: number;
  /** The image statistics checked (a gate fitted by an earlier version may check fewer) ... */
  statistics: string[];
  /** ... and for each, [low, high] accepted. */
  colourRange: [number, number][];
}

export interface GradabilityCheck {
  /** Reasons to refuse; empty when the image passes. */
  reasons: string[];
  /** The OOD score (0: like a training image), absent without a gate. */
  ood_score?: number;
}

/**
 * The strongest straight edge of an H x W brightness plane: over every row (and column) boundary,
 * the mean brightness step across it, less the mean of its two neighbouring boundaries' steps,
 * relative to the mean step. A retina's edges are curved, so their steps spread over many rows;
 * the seams of shuffled tiles, montages and checkerboards step along a whole line at once.
 */
function straightEdges(brightness: Float32Array, h: number, w: number): number {
  const rowSteps = Array.from({ length: h - 1 }, (_, y) => {
    let sum = 0;
    for (let x = 0; x < w; x++) sum += Math.abs(brightness[(y + 1) * w + x]! - brightness[y * w + x]!);
    return sum / w;
  });
  const columnSteps = Array.from({ length: w - 1 }, (_, x) => {
    let sum = 0;
    for (let y = 0; y < h; y++) sum += Math.abs(brightness[y * w + x + 1]! - brightness[y * w + x]!);
    return sum / h;
  });
  const peak = (steps: number[]): number => {
    const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
    let highest = 0;
    for (let j = 1; j < steps.length - 1; j++) highest = Math.max(highest, steps[j]! - (steps[j - 1]! + steps[j + 1]!) / 2);
    // A flat picture has no edge at all (and is refused by its brightness spread).
    return mean > 1e-6 ? highest / mean : 0;
  };
  return Math.max(peak(rowSteps), peak(columnSteps));
}

/** Per pixel of an H x W plane: its region (0 between, 1 centre, 2 corner) and its ring; the same for every image of a size. */
interface PlaneLayout {
  region: Uint8Array;
  regionSize: number[];
  ring: Uint8Array;
}
const layouts = new Map<string, PlaneLayout>();

function planeLayout(h: number, w: number): PlaneLayout {
  const key = `${h}x${w}`;
  let layout = layouts.get(key);
  if (!layout) {
    const radius = Float64Array.from(
      { length: h * w },
      (_, p) => Math.hypot((p % w) + 0.5 - w / 2, Math.floor(p / w) + 0.5 - h / 2) / (Math.min(h, w) / 2),
    );
    const region = radius.map((r) => (r < CENTRE_RADIUS ? 1 : r > CORNER_RADIUS ? 2 : 0));
    layout = {
      region: Uint8Array.from(region),
      regionSize: [0, 1, 2].map((r) => region.filter((v) => v === r).length),
      ring: Uint8Array.from(radius, (r) => Math.min(RINGS - 1, Math.floor((RINGS * r) / Math.SQRT2))),
    };
    layouts.set(key, layout);
  }
  return layout;
}

/** Per image: IMAGE_STATISTICS of N x 3 x S x S inputs in [-1, 1]. */
export function imageStatistics(x: Tensor): number[][] {
  const [n, , h, w] = x.shape as [number, number, number, number];
  const data = torch.tidy(() => x.add(1).div(2).contiguous().data() as Float32Array);
  const plane = h * w;
  const { region, regionSize, ring } = planeLayout(h, w);
  const brightnessPlane = new Float32Array(plane);
  return Array.from({ length: n }, (_, i) => {
    const regionBrightness = [0, 0, 0];
    const base = i * 3 * plane;
    let r = 0;
    let g = 0;
    let b = 0;
    let chroma = 0;
    let brightness = 0;
    let brightnessSq = 0;
    for (let p = 0; p < plane; p++) {
      const pr = data[base + p]!;
      const pg = data[base + plane + p]!;
      const pb = data[base + 2 * plane + p]!;
      r += pr;
      g += pg;
      b += pb;
      const max = Math.max(pr, pg, pb);
      brightnessPlane[p] = max;
      chroma += max - Math.min(pr, pg, pb);
      brightness += max;
      brightnessSq += max * max;
      regionBrightness[region[p]!]! += max;
    }
    const mean = brightness / plane;
    const centre = regionBrightness[1]! / Math.max(1, regionSize[1]!);
    const corner = regionBrightness[2]! / Math.max(1, regionSize[2]!);
    const spread = Math.sqrt(Math.max(0, brightnessSq / plane - mean * mean));
    const layout = [centre, centre - corner, radialStructure(brightnessPlane, ring), straightEdges(brightnessPlane, h, w)];
    return [r / plane, g / plane, b / plane, (r - g) / plane, (g - b) / plane, chroma / plane, spread, ...layout];
  });
}

/**
 * The last feature map pooled over its four quadrants (N x 4C): globally pooled features would
 * not change if the image's parts were shuffled, quadrants keep where things are.
 */
function quadrantPool(features: Tensor): Tensor {
  const [, , h, w] = features.shape as [number, number, number, number];
  const halves = (size: number): [number, number][] => [
    [0, Math.ceil(size / 2)],
    [Math.floor(size / 2), size],
  ];
  return torch.tidy(() =>
    torch.cat(
      halves(h).flatMap(([y0, y1]) => halves(w).map(([x0, x1]) => features.slice(2, y0, y1).slice(3, x0, x1).mean([2, 3]))),
      1,
    ),
  );
}

/** N inputs read a batch at a time: images start..end-1 (a prepared dataset's split need not fit in memory). */
interface Inputs {
  count: number;
  read: (start: number, end: number) => Tensor;
}
const inputsOf = (x: Tensor): Inputs => ({ count: x.shape[0]!, read: (start, end) => x.slice(0, start, end) });
const inputsOfSplit = (split: SplitSource): Inputs => ({ count: split.count, read: (start, end) => takeRange(split, start, end) });
const BATCH_SIZE = 256;

/** IMAGE_STATISTICS of every input, a batch at a time. */
function statisticsOf(inputs: Inputs): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start < inputs.count; start += BATCH_SIZE) {
    const batch = inputs.read(start, Math.min(inputs.count, start + BATCH_SIZE));
    try {
      rows.push(...imageStatistics(batch));
    } finally {
      batch.dispose();
    }
  }
  return rows;
}

/** Quadrant-pooled features of N inputs: N x D. */
function pooledFeatures(model: FeatureClassifier, inputs: Inputs): Tensor {
  return withEval(model, () =>
    torch.noGrad(() => {
      const chunks: Tensor[] = [];
      for (let start = 0; start < inputs.count; start += BATCH_SIZE) {
        chunks.push(torch.tidy(() => quadrantPool(model.features(inputs.read(start, Math.min(inputs.count, start + BATCH_SIZE))))));
      }
      const all = torch.cat(chunks, 0);
      for (const c of chunks) c.dispose();
      return all;
    }),
  );
}

/** Standardized with the training images' statistics, then L2-normalized: what the bank holds. */
function embed(pooled: Tensor, mean: Tensor, std: Tensor): Tensor {
  return torch.tidy(() => {
    const z = pooled.sub(mean).div(std);
    return z.div(z.mul(z).sum(1, true).sqrt().clamp(1e-12));
  });
}

/**
 * Each bank's transpose (D x N), made contiguous once: the matrix product with it is faster than
 * with the transposed view (the gate at batch 1: 0.69 against 0.92 ms for a 5-member ensemble's
 * 10 MB bank).
 */
const transposedBanks = new WeakMap<Tensor, Tensor>();
function transposedBank(bank: Tensor): Tensor {
  let transposed = transposedBanks.get(bank);
  if (!transposed) {
    transposed = torch.keep(bank.permute([1, 0]).contiguous());
    transposedBanks.set(bank, transposed);
  }
  return transposed;
}

/** OOD score of each of N inputs against the bank: 1 - cosine similarity to the k-th nearest. */
function oodScores(gate: Pick<GradabilityGate, 'bank' | 'mean' | 'std'>, pooled: Tensor): number[] {
  const { bank } = gate;
  const similarity = torch.tidy(() => embed(pooled, gate.mean, gate.std).matmul(transposedBank(bank)).data() as Float32Array);
  const banked = bank.shape[0]!;
  return Array.from(
    { length: pooled.shape[0]! },
    (_, i) => 1 - kthLargest(similarity.subarray(i * banked, (i + 1) * banked), Math.min(NEIGHBOURS, banked)),
  );
}

/** The k-th largest of `values` (1 <= k <= length, k small): one pass keeping the k largest so far, largest first. */
export function kthLargest(values: Float32Array, k: number): number {
  const top = new Float64Array(k).fill(Number.NEGATIVE_INFINITY);
  for (const v of values) {
    if (!(v > top[k - 1]!)) continue;
    let j = k - 1;
    for (; j > 0 && top[j - 1]! < v; j--) top[j] = top[j - 1]!;
    top[j] = v;
  }
  return top[k - 1]!;
}

/**
 * Fits the gate: image statistics' ranges and the feature bank on the training images, the OOD
 * threshold on the validation images (their highest score, with a margin).
 */
export function fitGradabilityGate(
  model: FeatureClassifier,
  trainSplit: SplitSource,
  valSplit: SplitSource,
  margins: GateMargins = GATE_MARGINS,
): GradabilityGate {
  const [train, val] = [inputsOfSplit(trainSplit), inputsOfSplit(valSplit)];
  const trainStats = statisticsOf(train);
  const valStats = statisticsOf(val);
  const colourRange = IMAGE_STATISTICS.map((_, s): [number, number] => {
    const values = trainStats.map((row) => row[s]!);
    const valValues = valStats.map((row) => row[s]!);
    const [low, high] = [Math.min(...values), Math.max(...values)];
    return [Math.min(margins.range * low, ...valValues), Math.max(high + margins.range * (high - low), ...valValues)];
  });
  const pooled = pooledFeatures(model, train);
  const mean = pooled.mean(0, true);
  const std = torch.tidy(() => pooled.sub(mean).pow(2).mean(0, true).sqrt().clamp(1e-6));
  const bank = embed(pooled, mean, std);
  pooled.dispose();
  const valPooled = pooledFeatures(model, val);
  const threshold = margins.ood * Math.max(...oodScores({ bank, mean, std }, valPooled));
  valPooled.dispose();
  return { bank, mean, std, threshold, statistics: IMAGE_STATISTICS, colourRange };
}

/**
 * Checks N inputs against the gate; without a gate (a run that has none) nothing is refused.
 * `features`: the model's `features(x)` when the caller has them already (grading a photograph
 * computes them once for the gate and the grade).
 */
export function checkGradability(
  model: FeatureClassifier,
  gate: GradabilityGate | undefined,
  x: Tensor,
  features?: Tensor,
): GradabilityCheck[] {
  if (!gate) return Array.from({ length: x.shape[0]! }, () => ({ reasons: [] }));
  const stats = imageStatistics(x);
  const pooled = features ? quadrantPool(features) : pooledFeatures(model, inputsOf(x));
  const scores = oodScores(gate, pooled);
  pooled.dispose();
  return stats.map((row, i) => {
    const reasons: string[] = [];
    const outside = gate.statistics.filter((name, s) => {
      const value = row[IMAGE_STATISTICS.indexOf(name)]!;
      return value < gate.colourRange[s]![0] || value > gate.colourRange[s]![1];
    });
    if (outside.length > 0) {
      reasons.push(
        `its colours or layout are unlike a colour fundus photograph's (${outside.join(', ')} outside the training images' range)`,
      );
    }
    if (scores[i]! > gate.threshold) {
      const score = `out-of-distribution score ${scores[i]!.toFixed(3)} above ${gate.threshold.toFixed(3)}`;
      reasons.push(`it is unlike the photographs the model learned from (${score})`);
    }
    return { reasons, ood_score: scores[i]! };
  });
}

/** gradability.safetensors: the bank and the standardization as tensors, thresholds in the metadata. */
export function gradabilityTensors(gate: GradabilityGate): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  return {
    tensors: new Map([
      ['bank', gate.bank],
      ['mean', gate.mean],
      ['std', gate.std],
    ]),
    metadata: {
      threshold: String(gate.threshold),
      colour_range: JSON.stringify(gate.colourRange),
      statistics: JSON.stringify(gate.statistics),
    },
  };
}

/** The gate back from gradabilityTensors' output; throws an Error saying what is missing or wrong. */
export function gateFromTensors(tensors: Map<string, Tensor>, metadata: Record<string, string>): GradabilityGate {
  const [bank, mean, std] = ['bank', 'mean', 'std'].map((name) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`no '${name}' tensor`);
    return t;
  }) as [Tensor, Tensor, Tensor];
  const threshold = Number(metadata.threshold);
  if (!Number.isFinite(threshold)) throw new Error(`metadata 'threshold' is ${metadata.threshold}, expected a number`);
  const statistics = JSON.parse(metadata.statistics ?? 'null') as string[];
  if (!Array.isArray(statistics)) throw new Error("metadata 'statistics' is malformed");
  const unknown = statistics.filter((name) => !IMAGE_STATISTICS.includes(name));
  if (unknown.length > 0) throw new Error(`its image statistics ${unknown.join(', ')} are not ones this version computes`);
  const colourRange = JSON.parse(metadata.colour_range ?? 'null') as [number, number][];
  if (!Array.isArray(colourRange) || colourRange.length !== statistics.length) throw new Error("metadata 'colour_range' is malformed");
  if (bank.shape[1] !== mean.shape[1] || bank.shape[1] !== std.shape[1]) throw new Error('bank, mean and std disagree in width');
  return { bank, mean, std, threshold, statistics, colourRange };
}
