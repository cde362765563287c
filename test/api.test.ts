// The library API's options: `force` (the gradability gate's refusal becomes warnings, as with
// `predict --force`) and `allowUnfinished` (as `--allow-unfinished`); its records are predictImage's.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { openModel } from '../src/api.js';
import { NOT_FUNDUS_WARNING } from '../src/data/fundus.js';
import { UserError } from '../src/errors.js';
import { predictImage, REFUSED_MESSAGE } from '../src/model/grade-photo.js';
import { openRun } from '../src/model/open-run.js';
import { RunDir } from '../src/model/run-dir.js';
import { untrainedRun } from './helpers/untrained-run.js';

const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../shared/data'), '../samples');

describe('openModel', () => {
  it('refuses what the gate refuses, grades it with force, and returns the records predictImage gives', async () => {
    const run = untrainedRun(1);
    const grey = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const model = await openModel(run);
    const refused = await model.grade({ name: 'grey.png', bytes: grey });
    expect(refused).toEqual({ file: 'grey.png', status: 'refused', reason: `${REFUSED_MESSAGE}: ${NOT_FUNDUS_WARNING}`, warnings: [] });
    const [forced] = await model.gradeBatch([{ name: 'grey.png', bytes: grey }], { force: true });
    expect(forced).toMatchObject({ status: 'graded', grade: expect.any(Number), warnings: [NOT_FUNDUS_WARNING] });
    expect(forced!.p_referable).toBeCloseTo(
      forced!.probabilities!.slice(2).reduce((a, b) => a + b, 0),
      6,
    );
    const { camPng, ...camRecord } = await model.gradcam({ name: 'grey.png', bytes: grey }, { force: true });
    expect(camRecord).toEqual(forced);
    expect(camPng?.length).toBeGreaterThan(100);
    const photo = join(samples, 'fundus_a.jpg');
    const graded = await model.grade(photo);
    model.dispose();

    const opened = openRun(run);
    try {
      expect(graded).toEqual(await predictImage(opened, photo, { crop: 'disc' }));
      expect(forced).toEqual(await predictImage(opened, { name: 'grey.png', bytes: grey }, { crop: 'disc', force: true }));
    } finally {
      opened.model.dispose();
    }
  });

  it('refuses an unfinished run unless allowUnfinished, and then says so in info and every record', async () => {
    const run = new RunDir(untrainedRun(1));
    run.writeJson('config', { epochs: 5, ensemble: 1 }); // training, no epoch checkpointed yet
    const error = await openModel(run.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(`retinagrade train --out ${run.path} --resume`);
    const model = await openModel(run.path, { allowUnfinished: true });
    expect(model.info.unfinished).toMatch(/^unfinished run \(0 of 5 epochs done\)/);
    const record = await model.grade(readFileSync(join(samples, 'fundus_a.jpg')));
    model.dispose();
    expect(record.warnings[0]).toBe(model.info.unfinished);
  });
});
