// The page at GET / in a real browser (Debian's chromium through playwright-core): choose a
// photograph, grade it, see the grade, the probabilities, the Grad-CAM picture and the notice.
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/serve/server.js';
import { GRADE_NAMES } from '../../src/data/grades.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { launchChromium } from '../helpers/chromium.js';

const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), '../samples');

let server: FastifyInstance;
let browser: Browser;
let url: string;

beforeAll(async () => {
  server = await createServer(untrainedRun(1));
  url = await server.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the page', () => {
  it('grades a chosen photograph and shows grade, probabilities, Grad-CAM and the notice', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(url);
    await expect.poll(() => page.textContent('#model')).toMatch(/Model: cnn, 28x28 px input/);
    expect(await page.textContent('body')).toContain(NOT_FOR_CLINICAL_USE);

    await page.setInputFiles('#file', join(samples, 'fundus_a.jpg'));
    await page.click('#form button[type=submit]');
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });

    expect(await page.textContent('#grade')).toMatch(new RegExp(`^Grade [0-4]: (${GRADE_NAMES.join('|')})$`));
    expect(await page.locator('#probabilities tr').count()).toBe(5);
    // Bars as long as their probability: each bar's share of its track (the cell inside its padding) is the number beside it.
    const bars = await page.$$eval('#probabilities tr', (rows) =>
      rows.map((row) => {
        const cell = row.querySelector('td.track')!;
        const style = getComputedStyle(cell);
        return {
          bar: row.querySelector('.bar')!.getBoundingClientRect().width,
          track: cell.getBoundingClientRect().width - Number.parseFloat(style.paddingLeft) - Number.parseFloat(style.paddingRight),
          percent: Number.parseFloat(row.querySelector('td.value')!.textContent!),
        };
      }),
    );
    for (const { bar, track, percent } of bars) {
      expect(track).toBeGreaterThan(200);
      expect(Math.abs(bar - (track * percent) / 100)).toBeLessThan(2);
    }
    expect(await page.textContent('#referable')).toMatch(/^P\(referable DR, grade 2 or worse\) \d+\.\d%/);
    expect(await page.textContent('#status')).toBe('Graded fundus_a.jpg.');
    expect(await page.isVisible('#cam-figure')).toBe(true);
    expect(await page.getAttribute('#cam-image', 'src')).toMatch(/^data:image\/png;base64,/);
    expect(await page.textContent('#disclaimer')).toContain('not for clinical use');
    expect(errors).toEqual([]);
  }, 60_000);

  it('shows a refusal, not a grade, for an image that is not a fundus photograph', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    const black = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000000' } })
      .png()
      .toBuffer();
    await page.setInputFiles('#file', { name: 'black.png', mimeType: 'image/png', buffer: black });
    await page.click('#form button[type=submit]');
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#grade')).toBe('Not graded: this does not look like a gradable colour fundus photograph');
    expect(await page.textContent('#referable')).toMatch(/^Reason: not graded: .*no dark border around a bright disc/);
    expect(await page.isHidden('#graded')).toBe(true);
    expect(await page.textContent('#status')).toBe('Not graded: black.png was refused.');
  }, 60_000);

  it('says what was wrong with a file that is not an image', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
    await page.click('#form button[type=submit]');
    await expect.poll(() => page.textContent('#status'), { timeout: 30_000 }).toMatch(/^Could not grade notes\.png: /);
    expect(await page.isHidden('#result')).toBe(true);
  }, 60_000);
});
