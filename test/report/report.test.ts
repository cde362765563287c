// report.html opened from disk in a real browser (Debian's chromium through playwright-core): no
// network request, every chart rendered as a non-empty SVG, numbers as metrics.json has them, the
// per-grade intervals around them, and the gallery's pictures loaded and captioned with the rows
// of predictions.csv they show. A screenshot is kept in .scratch/artifacts/ for a person to look at.
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRADE_NAMES } from '../../src/data/grades.js';
import { writeReport } from '../../src/report/report.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { syntheticRunDir } from '../helpers/synthetic-run.js';
import { launchChromium } from '../helpers/chromium.js';

const artifacts = resolve(import.meta.dirname, '../../.scratch/artifacts');
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

describe('report.html', () => {
  it('opens from disk without a network, renders every chart, and shows the numbers of metrics.json', async () => {
    const { path, metrics, testImages } = syntheticRunDir(RunConfigSchema.parse({ ensemble: 2, epochs: 3 }));
    const file = await writeReport(path, testImages);
    expect(file).toBe(join(path, 'report.html'));

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      requests.push(route.request().url());
      return route.request().url() === pathToFileURL(file).href ? route.continue() : route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(pathToFileURL(file).href);
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(errors).toEqual([]);

    for (const chart of ['training', 'confusion', 'roc', 'reliability', 'coverage']) {
      const svg = page.locator(`#chart-${chart} svg`);
      expect(await svg.count(), chart).toBe(1);
      const box = await svg.boundingBox();
      expect(box!.width, chart).toBeGreaterThan(100);
      expect(box!.height, chart).toBeGreaterThan(100);
      // Marks drawn: paths and shapes, not just an empty frame.
      expect(await page.locator(`#chart-${chart} svg path`).count(), chart).toBeGreaterThan(5);
    }
    // The confusion heat map writes each count in its cell.
    const cellTexts = await page.locator('#chart-confusion svg text').allTextContents();
    for (const count of metrics.test.confusion.flat()) expect(cellTexts).toContain(String(count));

    const value = async (key: string) => {
      const cell = page.locator(`[data-metric="${key}"]`);
      return { value: Number(await cell.getAttribute('data-value')), text: (await cell.textContent())! };
    };
    for (const [key, expected] of [
      ['test.acc', metrics.test.acc],
      ['val.auc', metrics.val.auc],
      ['test.qwk', metrics.test.qwk],
      ['test.referable.sensitivity', metrics.test.referable!.sensitivity],
      ['test.referable.specificity', metrics.test.referable!.specificity],
      ['val.vision_threatening.auc', metrics.val.vision_threatening!.auc],
      ['test.recall.4', metrics.test.per_class[4]!.recall],
    ] as const) {
      const shown = await value(key);
      expect(shown.value, key).toBe(expected);
      expect(shown.text.startsWith(expected.toFixed(3)), `${key}: ${shown.text}`).toBe(true);
    }
    // Per grade: sensitivity, precision and AUC as metrics.json has them, inside their bootstrap interval.
    for (const [g, c] of metrics.test.per_class.entries()) {
      for (const [key, expected] of [
        [`test.recall.${g}`, c.recall],
        [`test.precision.${g}`, c.precision],
        [`test.auc.${g}`, metrics.test.auc_per_grade[g]!],
      ] as const) {
        const shown = page.locator(`#grades [data-metric="${key}"]`);
        const [value, lo, hi] = await Promise.all(
          ['data-value', 'data-lo', 'data-hi'].map(async (a) => Number(await shown.getAttribute(a))),
        );
        expect(value, key).toBe(expected);
        expect(lo, key).toBeLessThanOrEqual(value!);
        expect(hi, key).toBeGreaterThanOrEqual(value!);
        expect(await shown.textContent(), key).toBe(`${expected.toFixed(3)} [${lo!.toFixed(3)}, ${hi!.toFixed(3)}]`);
      }
      expect(await page.getAttribute(`#grades [data-metric="test.auc.${g}"]`, 'data-hi')).not.toBe(
        await page.getAttribute(`#grades [data-metric="test.auc.${g}"]`, 'data-lo'),
      );
    }

    // The gallery, against predictions.csv read here: per grade the right prediction with the highest
    // probability, then the 8 wrong ones with the highest probability, most confident first.
    const rows = readFileSync(join(path, 'predictions.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => {
        const [index, label, predicted, ...p] = line.split(',').map(Number);
        return { index: index!, label: label!, predicted: predicted!, probability: Math.max(...p.slice(0, 5)) };
      });
    const mostConfident = (wanted: typeof rows) => [...wanted].sort((a, b) => b.probability - a.probability || a.index - b.index);
    const expectedCorrect = [0, 1, 2, 3, 4].flatMap((g) =>
      mostConfident(rows.filter((r) => r.label === g && r.predicted === g)).slice(0, 1),
    );
    const expectedWrong = mostConfident(rows.filter((r) => r.label !== r.predicted)).slice(0, 8);
    expect(expectedCorrect.length).toBeGreaterThan(0);
    expect(expectedWrong).toHaveLength(8);
    for (const [id, expected] of [
      ['gallery-correct', expectedCorrect],
      ['gallery-mistakes', expectedWrong],
    ] as const) {
      const figures = page.locator(`#${id} figure`);
      expect(await figures.count(), id).toBe(expected.length);
      for (const [k, row] of expected.entries()) {
        const figure = figures.nth(k);
        expect(Number(await figure.getAttribute('data-index')), `${id} ${k}`).toBe(row.index);
        const caption = await figure.locator('figcaption').textContent();
        expect(caption).toContain(`true ${row.label} ${GRADE_NAMES[row.label]}`);
        expect(caption).toContain(`predicted ${row.predicted} ${GRADE_NAMES[row.predicted]}`);
        expect(caption).toContain(`probability ${row.probability.toFixed(3)}`);
        // The picture decoded: the image and its Grad-CAM side by side over a caption band.
        const size = await figure.locator('img').evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
        expect(size[0], `${id} ${k}`).toBeGreaterThan(100);
        expect(size[0]! / size[1]!, `${id} ${k}`).toBeGreaterThan(1.2);
      }
    }

    expect(await page.textContent('#model-card')).toContain('# Model card');
    expect(await page.textContent('body')).toContain('not for clinical use');

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
  }, 60_000);
});
