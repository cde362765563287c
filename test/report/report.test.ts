// report.html opened from disk in a real browser (Debian's chromium through playwright-core): no
// network request, every chart rendered as a non-empty SVG, numbers as metrics.json has them. A
// screenshot is kept in .scratch/artifacts/ for a person to look at.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    const { path, metrics } = syntheticRunDir(RunConfigSchema.parse({ ensemble: 2, epochs: 3 }));
    const file = await writeReport(path);
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
    expect(await page.textContent('#model-card')).toContain('# Model card');
    expect(await page.textContent('body')).toContain('not for clinical use');

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
  }, 60_000);
});
