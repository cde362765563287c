// Grad-CAM (Selvaraju et al., ICCV 2017): which regions of the image pushed the model towards a
// grade. The last feature map's channels are weighted by the mean gradient of the grade's
// log-probability with respect to them, summed, rectified, and upsampled to the image.
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { GRADE_NAMES } from '../data/grades.js';
import { textSvg } from '../data/picture-text.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { withEval, type FeatureClassifier, type Objective } from '../nn/index.js';

/** A heat map over one image: size x size values in [0, 1] (1 = most evidence for the grade). */
export interface ClassActivationMap {
  grade: number;
  size: number;
  heat: Float32Array;
}

/** Grad-CAM of `grade` for one image `x` (1 x C x S x S). */
export function gradCam(model: FeatureClassifier, objective: Objective, x: Tensor, grade: number): ClassActivationMap {
  const size = x.shape[3]!;
  // Only the feature map needs a gradient: the weights' would accumulate in their .grad with
  // every call (a served model is asked again and again).
  const parameters = model.parameters().filter((p) => p.requiresGrad);
  for (const p of parameters) p.requiresGrad = false;
  try {
    const heat = withEval(model, () =>
      torch.tidy(() => {
        // A leaf copy of the feature map: its .grad is the gradient Grad-CAM weighs channels by.
        const features = torch.noGrad(() => model.features(x)).detach();
        features.requiresGrad = true;
        const probs = objective.probabilities(model.classify(features));
        probs
          .slice(1, grade, grade + 1)
          .clamp(1e-12)
          .log()
          .sum()
          .backward();
        const weights = features.grad!.mean([2, 3], true);
        const cam = torch.noGrad(() => features.mul(weights).sum(1, true).relu());
        const upsampled = torch.interpolate(cam, [size, size], { mode: 'bilinear' });
        const peak = upsampled.max().item();
        return (peak > 0 ? upsampled.div(peak) : upsampled).data() as Float32Array;
      }),
    );
    return { grade, size, heat };
  } finally {
    for (const p of parameters) p.requiresGrad = true;
  }
}

/** A colour for a heat value: dark blue through cyan, yellow, to red (a "jet"-like ramp). */
function heatColour(v: number): [number, number, number] {
  const channel = (centre: number): number => Math.round(255 * Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

/** Height of the caption band under the pictures, and of the colour scale inside it. */
export const CAPTION_HEIGHT = 36;
const SCALE_BAR_HEIGHT = 8;

/**
 * The caption's font size, at most 12 px, small enough for `text` to fit in `width` pixels (DejaVu
 * Sans averages under 0.62 em a character), so that "Proliferative" is not cut off at 28 px.
 */
const fittingFontSize = (text: string, width: number): number => Math.min(12, Math.floor((width - 6) / (0.62 * text.length)));

/** The colour scale: heatColour from 0 (left) to 1 (right), `width` x SCALE_BAR_HEIGHT RGB. */
function colourScale(width: number): Buffer {
  const bar = Buffer.alloc(width * SCALE_BAR_HEIGHT * 3);
  for (let x = 0; x < width; x++) {
    const colour = heatColour(x / (width - 1));
    for (let y = 0; y < SCALE_BAR_HEIGHT; y++) bar.set(colour, (y * width + x) * 3);
  }
  return bar;
}

/**
 * The image (size x size x 3 RGB) with the heat map blended over it, and the plain image beside it
 * for comparison, upscaled `scale` times, with a caption band below naming the grade and showing
 * the colour scale from weak to strong evidence; PNG bytes (`predict --cam` writes them to a file,
 * the server returns them).
 */
export async function camOverlayPng(rgb: Uint8Array, cam: ClassActivationMap, scale = 4): Promise<Buffer> {
  const { size, heat } = cam;
  const side = new Uint8Array(size * size * 3 * 2);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const src = (y * size + x) * 3;
      const colour = heatColour(heat[y * size + x]!);
      const alpha = 0.5;
      for (let c = 0; c < 3; c++) {
        side[(y * 2 * size + x) * 3 + c] = rgb[src + c]!;
        side[(y * 2 * size + size + x) * 3 + c] = Math.round((1 - alpha) * rgb[src + c]! + alpha * colour[c]!);
      }
    }
  }
  const width = 2 * size * scale;
  const height = size * scale;
  const pictures = await sharp(side, { raw: { width: 2 * size, height: size, channels: 3 } })
    .resize(width, height, { kernel: 'nearest' })
    .raw()
    .toBuffer();
  const half = width / 2;
  const scaleWidth = half - 6;
  const textRow = CAPTION_HEIGHT - SCALE_BAR_HEIGHT - 6;
  const caption = `grade ${cam.grade} ${GRADE_NAMES[cam.grade]}`;
  return sharp({ create: { width, height: height + CAPTION_HEIGHT, channels: 3, background: '#ffffff' } })
    .composite([
      { input: pictures, raw: { width, height, channels: 3 }, top: 0, left: 0 },
      { input: textSvg(half, textRow, caption, { fontSize: fittingFontSize(caption, half) }), top: height + 2, left: 0 },
      { input: textSvg(half, textRow, 'weak', { fontSize: 11 }), top: height + 2, left: half },
      { input: textSvg(half, textRow, 'strong', { fontSize: 11, anchor: 'end' }), top: height + 2, left: half },
      {
        input: colourScale(scaleWidth),
        raw: { width: scaleWidth, height: SCALE_BAR_HEIGHT, channels: 3 },
        top: height + textRow + 2,
        left: half + 3,
      },
    ])
    .removeAlpha()
    .png()
    .toBuffer();
}

/** Writes camOverlayPng's picture to `path`. */
export async function writeCamOverlay(path: string, rgb: Uint8Array, cam: ClassActivationMap, scale = 4): Promise<void> {
  await writeFile(path, await camOverlayPng(rgb, cam, scale));
}
