// The page's "in this browser" mode in a real browser (Debian's chromium through playwright-core):
// onnxruntime-web from this server grades a photograph inside the page, with the grade the server
// gives, the run's calibration applied (temperature, thresholds), a warning that the photograph was
// not checked for gradability, and no request carries the photograph.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRADE_NAMES } from '../../src/data/grades.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData, takeRange } from '../../src/data/training-data.js';
import { RunDir } from '../../src/model/run-dir.js';
import { BROWSER_NOT_CHECKED_WARNING } from '../../src/serve/page.js';
import { createServer } from '../../src/serve/server.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { launchChromium } from '../helpers/chromium.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const samples = resolve(dataDir, '../samples');

let server: FastifyInstance;
let browser: Browser;
let url: string;

beforeAll(async () => {
  // Batch-norm statistics from real images: probabilities that differ between photographs.
  const data = loadRetinaTensors({ dataDir, size: 28 });
  const run = untrainedRun(2, { randomNorm: { seed: 4, images: takeRange(data.test, 0, 64) } });
  releaseTrainingData(data);
  // Thresholds no prediction can miss (every one uncertain and referable): the page must apply them too.
  const calibration = {
    temperature: 1.5,
    referable: { threshold: 0, minSensitivity: 0.9 },
    vision_threatening: { threshold: 1, minSensitivity: 0.9 },
    uncertainty: { threshold: 0, referFraction: 0.1 },
  };
  writeFileSync(new RunDir(run).file('calibration'), JSON.stringify(calibration));
  server = await createServer(run);
  url = await server.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('grading in this browser', () => {
  it.each(['fundus_a.jpg', 'fundus_b.jpg', 'fundus_c.jpg'])(
    '%s: the server grade, and the photograph never sent',
    async (name) => {
      const photo = readFileSync(join(samples, name));
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      const requests: { url: string; body: Buffer | null }[] = [];
      page.on('request', (request) => requests.push({ url: request.url(), body: request.postDataBuffer() }));
      await page.goto(url);
      await page.waitForSelector('#where:not([hidden])');
      await page.check('input[name=where][value=browser]');
      await page.setInputFiles('#file', join(samples, name));
      await expect.poll(() => page.textContent('#status'), { timeout: 30_000 }).toBe(`Graded ${name} in this browser.`);
      const shown = await page.textContent('#grade');
      const referable = await page.textContent('#referable');
      const warnings = await page.locator('#warnings li').allTextContents();
      const probabilities = await page.locator('#probabilities td.value').allTextContents();
      await page.close();

      const response = await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
      const served = (await response.json()) as {
        status: string;
        grade: number;
        grade_name: string;
        probabilities: number[];
        p_referable: number;
        referable: boolean;
      };
      expect(served).toMatchObject({ status: 'uncertain', referable: true });
      expect(shown).toBe(`Uncertain: refer for human grading (most probable: grade ${served.grade}, ${served.grade_name})`);
      const pReferable = /^P\(referable DR, grade 2 or worse\) ([\d.]+)%: at or above the operating point, refer\./.exec(referable ?? '');
      expect(pReferable, referable ?? '').not.toBeNull();
      expect(Math.abs(Number.parseFloat(pReferable![1]!) - 100 * served.p_referable)).toBeLessThan(1);
      expect(warnings).toContain(`Warning: ${BROWSER_NOT_CHECKED_WARNING}`);
      expect(new Set(served.probabilities.map((p) => p.toFixed(2))).size).toBeGreaterThan(1); // not a flat model
      // The page's percentages (one decimal) near the server's: the crop and resize are the page's own.
      probabilities.forEach((text, g) => {
        expect(Math.abs(Number.parseFloat(text) - 100 * served.probabilities[g]!), `${GRADE_NAMES[g]}: ${text}`).toBeLessThan(1);
      });

      expect(requests.some((r) => r.url.endsWith('/v1/model.onnx'))).toBe(true);
      expect(requests.some((r) => r.url.endsWith('/ort/ort-wasm-simd-threaded.wasm'))).toBe(true);
      expect(requests.filter((r) => r.url.includes('/v1/predict'))).toEqual([]);
      // No request had a body at all (only GETs of the page, the model and the runtime).
      expect(requests.filter((r) => r.body !== null && r.body.length > 0)).toEqual([]);
      expect(errors).toEqual([]);
    },
    60_000,
  );
});
