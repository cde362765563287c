// End to end through the installed command: prepare (killed mid-run and resumed), info --data,
// train --data and --init, evaluate --data as external validation.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { copySamples, dataDir, exportMany, gradesInTurn, writeCsv } from '../data/prepare/make-sources.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin', 'retinagrade.js');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-e2e-prepare-'));
const source = join(work, 'aptos', 'train_images');
const labels = join(work, 'aptos', 'train.csv');
const PHOTOS = 50;
let exported: Awaited<ReturnType<typeof exportMany>> = [];

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const prepareArgs = (out: string) => ['prepare', source, '--labels', labels, '--out', out, '--size', '32', '--concurrency', '1'];
const quick = ['--arch', 'cnn', '--width', '8', '--ensemble', '1', '--epochs', '1', '--batch-size', '16', '--threads', '2', '--json'];

/** Runs `prepare` and kills it with SIGKILL once `lines` photographs are recorded; returns how many were. */
function prepareUntil(out: string, lines: number): Promise<number> {
  const child = spawn(process.execPath, [bin, ...prepareArgs(out)], { stdio: 'ignore', env: { ...process.env, CI: '1' } });
  const progress = join(out, 'progress.jsonl');
  const recorded = () => (existsSync(progress) ? readFileSync(progress, 'utf8').split('\n').length - 1 : 0);
  return new Promise((done, fail) => {
    const poll = setInterval(() => {
      if (recorded() >= lines) {
        clearInterval(poll);
        child.kill('SIGKILL');
        child.on('exit', () => done(recorded()));
      }
    }, 5);
    child.on('exit', (code) => {
      if (code === null) return;
      clearInterval(poll);
      fail(new Error(`prepare ended (${code}) before it could be killed`));
    });
  });
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  exported = await exportMany(source, PHOTOS, (i, ext) => `p${String(i).padStart(3, '0')}.${ext}`, 0, gradesInTurn(PHOTOS, 500));
  const samples = copySamples(source, (f) => f);
  writeCsv(
    labels,
    ['id_code', 'diagnosis'],
    [...exported.map((e) => [e.name.replace(/\.[a-z]+$/, ''), e.grade]), ...samples.map((s) => [s, 2])],
  );
}, 60_000);

describe('prepare', () => {
  it('resumes after SIGKILL and ends identical to an uninterrupted run', async () => {
    const whole = cli(prepareArgs(join(work, 'whole')));
    expect(whole.stderr).toBe('');
    expect(whole.code).toBe(0);
    const killedAt = await prepareUntil(join(work, 'resumed'), 5);
    expect(killedAt).toBeLessThan(PHOTOS);
    expect(existsSync(join(work, 'resumed', 'dataset.json'))).toBe(false);
    const resumed = cli(prepareArgs(join(work, 'resumed')));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`decoded \\(resumed after ${killedAt}\\)`));
    const [a, b] = [json(join(work, 'whole', 'dataset.json')), json(join(work, 'resumed', 'dataset.json'))];
    expect(b.splits).toEqual(a.splits); // same rows, same order, same md5 of every array
    expect(a.splits.train.count + a.splits.val.count + a.splits.test.count).toBe(PHOTOS + 3);
  });

  it('info --data prints the card; a bad folder is a clear error', () => {
    const info = cli(['info', '--data', join(work, 'whole')]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/train_images: 32x32x3, retina-disc crop, from labels-csv/);
    expect(info.stdout).toContain('not for clinical use');
    const bad = cli(['info', '--data', work]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /is not a prepared dataset: .*dataset.json: cannot read a prepared dataset card \(no such file\); make one with retinagrade prepare/,
    );
  });
});

describe('train --data, --init and evaluate --data', () => {
  const dataset = () => join(work, 'whole');
  it('trains on the prepared folder and evaluates on all of it', () => {
    const run = join(work, 'run-prepared');
    const trained = cli(['train', ...quick, '--data', dataset(), '--size', '28', '--out', run]);
    expect(trained.code, trained.stderr).toBe(0);
    const metrics = json(join(run, 'metrics.json'));
    expect(metrics.data.prepared).toMatchObject({ name: 'train_images', layout: 'labels-csv' });
    expect(json(join(run, 'config.json')).data).toBe(dataset());
    const evaluated = cli(['evaluate', '--model', run, '--data', dataset(), '--split', 'all', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const report = JSON.parse(evaluated.stdout);
    expect(report.count).toBe(PHOTOS + 3);
    expect(report.notes).toEqual(["images stored at 32x32 are resized to the model's 28x28"]);
    expect(report.ci95.auc.lo).toBeLessThanOrEqual(report.auc);
  });

  it('validates a RetinaMNIST model externally and transfers it with --init', () => {
    const base = join(work, 'run-retinamnist');
    expect(cli(['train', ...quick, '--data-dir', dataDir, '--out', base]).code).toBe(0);
    const evaluated = cli(['evaluate', '--model', base, '--data', dataset(), '--split', 'test']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(/note: preprocessing differs: the model was trained on MedMNIST's centre crop and resize/);
    expect(evaluated.stdout).toMatch(/note: external data: grades come from train_images's own labels/);
    const transferred = cli(['train', ...quick, '--data', dataset(), '--init', base, '--out', join(work, 'run-transfer')]);
    expect(transferred.code, transferred.stderr).toBe(0);
    const misfit = cli(['train', ...quick, '--width', '16', '--data', dataset(), '--init', base, '--out', join(work, 'run-misfit')]);
    expect(misfit.code).toBe(1);
    expect(misfit.stderr).toMatch(/--init .*run-retinamnist: its weights do not fit this model/);
  });
});

describe('train --data: input sizes, and a set graded 0-3', () => {
  const graded03 = join(work, 'graded-0-3');
  const run = join(work, 'run-0-3');
  beforeAll(() => {
    const labels03 = join(work, 'graded-0-3.csv');
    writeCsv(
      labels03,
      ['id_code', 'diagnosis'],
      exported.filter((e) => e.grade < 4).map((e) => [e.name.replace(/\.[a-z]+$/, ''), e.grade]),
    );
    const prepared = cli(['prepare', source, '--labels', labels03, '--out', graded03, '--size', '256', '--val', '0.2', '--test', '0.2']);
    expect(prepared.code, prepared.stderr).toBe(0);
  }, 120_000);

  it("defaults to the datasheet's 64x64, trains above 224 up to the prepared size, and refuses more naming both", () => {
    const printed = cli(['train', '--data', graded03, '--print-config']);
    expect(JSON.parse(printed.stdout).size).toBe(64);
    const refused = cli(['train', ...quick, '--data', graded03, '--size', '320', '--out', join(work, 'run-too-big')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `--size 320 is larger than the 256x256 images ${graded03} was prepared at: train at --size 256 or less, ` +
        'or prepare the photographs again with --size 320',
    );
    expect(existsSync(join(work, 'run-too-big'))).toBe(false);
    const trained = cli(['train', ...quick, '--data', graded03, '--size', '240', '--out', run]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(json(join(run, 'config.json')).size).toBe(240);
  });

  it('reports the figures over grades 0-3 with a note in metrics.json, the model card and evaluate', () => {
    const note = 'no image of grade 4 in this split: AUC and macro F1 are means over grades 0, 1, 2, 3';
    const metrics = json(join(run, 'metrics.json'));
    for (const split of ['val', 'test']) {
      expect(metrics[split].grades_absent).toEqual([4]);
      expect(metrics[split].note).toBe(note);
      expect(metrics[split].auc_per_grade[4]).toBeNull();
    }
    expect(readFileSync(join(run, 'MODEL_CARD.md'), 'utf8')).toContain(`- Test: ${note}.`);
    const evaluated = cli(['evaluate', '--model', run, '--data', graded03, '--split', 'test', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const report = JSON.parse(evaluated.stdout);
    expect(report.note).toBe(note);
    expect(report.auc).toBeGreaterThanOrEqual(0);
    expect(report.notes).toContain('no photographs of grade(s) Proliferative DR: this dataset may grade on another scale');
    const text = cli(['evaluate', '--model', run, '--data', graded03, '--split', 'test']);
    expect(text.stdout).toContain(`note: ${note}`);
  });
});
