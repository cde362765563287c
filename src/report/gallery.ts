// The report's gallery of test images: for each grade the image the model put in it right with the
// highest probability, then its worst mistakes (wrong, with the highest probability), each beside
// its Grad-CAM of the predicted grade and captioned with the true and predicted grade.
import { GRADE_NAMES } from '../data/grades.js';
import { type SplitSource, takeRange } from '../data/training-data.js';
import { camOverlayPng, gradCam } from '../explain/gradcam.js';
import { inputPixels } from '../model/grade-photo.js';
import type { OpenedModel } from '../model/open-run.js';
import { UserError } from '../errors.js';
import { escapeHtml } from './html.js';

export interface GalleryPick {
  /** Row of the test split (predictions.csv's `index`). */
  index: number;
  label: number;
  predicted: number;
  /** The predicted grade's probability. */
  probability: number;
}

/** How many mistakes the gallery shows. */
export const GALLERY_MISTAKES = 8;

/** The gallery's images: per grade its most confident right prediction (if any), then the most confident mistakes. */
export function galleryPicks(
  labels: number[],
  probs: number[][],
  mistakes = GALLERY_MISTAKES,
): { correct: GalleryPick[]; wrong: GalleryPick[] } {
  const picks = probs.map((p, index): GalleryPick => {
    const probability = Math.max(...p);
    return { index, label: labels[index]!, predicted: p.indexOf(probability), probability };
  });
  const byConfidence = [...picks].sort((a, b) => b.probability - a.probability || a.index - b.index);
  const correct = GRADE_NAMES.flatMap((_, g) => byConfidence.find((p) => p.label === g && p.predicted === g) ?? []);
  const wrong = byConfidence.filter((p) => p.label !== p.predicted).slice(0, mistakes);
  return { correct, wrong };
}

const gradeName = (g: number): string => `${g} ${GRADE_NAMES[g]}`;

/** A pick's picture (the image and its Grad-CAM, PNG) as a data: URL. */
async function camDataUrl(opened: OpenedModel, images: SplitSource, pick: GalleryPick): Promise<string> {
  const x = takeRange(images, pick.index, pick.index + 1);
  try {
    const cam = gradCam(opened.model, opened.objective, x, pick.predicted);
    const png = await camOverlayPng(inputPixels(x), cam);
    return `data:image/png;base64,${png.toString('base64')}`;
  } finally {
    x.dispose();
  }
}

/** The gallery as HTML figures. */
export async function galleryFigures(opened: OpenedModel, images: SplitSource, picks: GalleryPick[]): Promise<string[]> {
  const figures: string[] = [];
  for (const pick of picks) {
    const src = await camDataUrl(opened, images, pick);
    const caption =
      `test image ${pick.index}: true <span class="true-grade">${escapeHtml(gradeName(pick.label))}</span>, ` +
      `predicted <span class="predicted-grade">${escapeHtml(gradeName(pick.predicted))}</span> ` +
      `(probability <span class="probability">${pick.probability.toFixed(3)}</span>)`;
    figures.push(
      `<figure class="gallery-item" data-index="${pick.index}" data-label="${pick.label}" data-predicted="${pick.predicted}" ` +
        `data-probability="${pick.probability}"><img src="${src}" alt="test image ${pick.index} and its Grad-CAM">` +
        `<figcaption>${caption}</figcaption></figure>`,
    );
  }
  return figures;
}

/** The test images must be those predictions.csv was written from (the same count and grades), else a UserError. */
export function checkGalleryImages(images: SplitSource, labels: number[], file: string): void {
  if (images.count !== labels.length) {
    throw new UserError(`${file} has ${labels.length} test rows but the test split given has ${images.count} images: not the run's data`);
  }
  const differs = labels.findIndex((label, i) => images.labels[i] !== label);
  if (differs !== -1) {
    throw new UserError(
      `test image ${differs} is grade ${images.labels[differs]} but grade ${labels[differs]} in ${file}: not the run's data`,
    );
  }
}
