// End to end through the installed command (bin/retinagrade.js over dist/): a short real training
// run on RetinaMNIST, then evaluate, predict, resume and bad input against that run directory.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMedMNIST } from '../../src/data/medmnist.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin', 'retinagrade.js');
const dataDir = process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-e2e-'));
const runDir = join(work, 'run');
const common = ['--arch', 'cnn', '--width', '16', '--ensemble', '1', '--seed', '3', '--threads', '2', '--data-dir', dataDir];

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1', ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** Starts `train args` and kills it with SIGKILL as soon as `log` records epoch 1. */
function trainUntilLogged(args: string[], log: string): Promise<void> {
  const child = spawn(process.execPath, [bin, 'train', ...args], { stdio: 'ignore', env: { ...process.env, CI: '1' } });
  return new Promise<void>((done, fail) => {
    const poll = setInterval(() => {
      if (existsSync(log) && readFileSync(log, 'utf8').includes('"epoch":1')) {
        clearInterval(poll);
        child.kill('SIGKILL');
        done();
      }
    }, 20);
    child.on('exit', (code) => {
      if (code === null) return; // killed by us
      clearInterval(poll);
      fail(new Error(`training ended (${code}) before it could be killed`));
    });
  });
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const trained = cli(['train', ...common, '--epochs', '2', '--out', runDir, '--json']);
  expect(trained.stderr).not.toMatch(/Error|at .*\.js:\d+/);
  expect(trained.code).toBe(0);
}, 300_000);

describe('train', () => {
  it('writes a complete, consistent run directory', () => {
    for (const file of [
      'config.json',
      'log.jsonl',
      'best.safetensors',
      'calibration.json',
      'metrics.json',
      'predictions.csv',
      'MODEL_CARD.md',
    ]) {
      expect(existsSync(join(runDir, file)), file).toBe(true);
    }
    const metrics = json(join(runDir, 'metrics.json'));
    const card = readFileSync(join(runDir, 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('not for clinical use');
    expect(card).toContain(`| test (400) | ${metrics.test.acc.toFixed(3)} [`);
    const { referable } = metrics.test;
    expect(card).toContain(`| referable (grade >= 2) | test | ${referable.positives} / 400 | ${referable.auc.toFixed(3)} [`);
    expect(referable.threshold).toBe(json(join(runDir, 'calibration.json')).referable.threshold);
    expect(metrics.val.referable.sensitivity).toBeGreaterThanOrEqual(0.9);
    expect(card).toContain(`| 0 No DR | ${metrics.test.per_class[0].support} |`);
    expect(readFileSync(join(runDir, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(metrics.epochs_run).toBe(2);
    expect(card).toContain(', 2 epochs, batch 64');
    expect(metrics.data).toMatchObject({ size: 28, upsampled_from: null, md5: 'bd4c0672f1bba3e3a89f0e4e876791e4' });
    for (const split of ['val', 'test']) for (const key of ['acc', 'auc', 'qwk']) expect(metrics[split][key]).toBeTypeOf('number');
    expect(metrics.test.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(400);

    // predictions.csv agrees with metrics.json.
    const rows = readFileSync(join(runDir, 'predictions.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',').map(Number));
    expect(rows).toHaveLength(400);
    const correct = rows.filter(([, label, predicted]) => label === predicted).length;
    expect(correct / 400).toBeCloseTo(metrics.test.acc, 10);
    for (const row of rows) {
      expect(row.slice(3, 8).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(row[8]).toBeCloseTo(row[5]! + row[6]! + row[7]!, 5); // p_referable = p2 + p3 + p4
    }
  });

  it('evaluate on the saved weights reproduces the test metrics', () => {
    const evaluated = cli(['evaluate', '--model', runDir, '--data-dir', dataDir, '--json']);
    expect(evaluated.code).toBe(0);
    const report = JSON.parse(evaluated.stdout);
    const metrics = json(join(runDir, 'metrics.json'));
    expect(report.acc).toBeCloseTo(metrics.test.acc, 10);
    expect(report.auc).toBeCloseTo(metrics.test.auc, 6);
    expect(report.qwk).toBeCloseTo(metrics.test.qwk, 6);
    // The intervals and the referable figures too, with the run's operating point.
    expect(report.ci95.auc.lo).toBeCloseTo(metrics.test.ci95.auc.lo, 6);
    expect(report.referable.threshold).toBe(metrics.test.referable.threshold);
    expect(report.referable.sensitivity).toBeCloseTo(metrics.test.referable.sensitivity, 10);
    expect(report.referable.ci95.specificity.hi).toBeCloseTo(metrics.test.referable.ci95.specificity.hi, 6);
    const text = cli(['evaluate', '--model', runDir, '--data-dir', dataDir]).stdout;
    expect(text).toContain(`test (400): ACC ${metrics.test.acc.toFixed(3)} [${metrics.test.ci95.acc.lo.toFixed(3)}, `);
    expect(text).toContain(
      `referable (grade >= 2, ${metrics.test.referable.positives} of 400): AUC ${metrics.test.referable.auc.toFixed(3)}`,
    );
    expect(text).toContain('confusion matrix (rows: true grade, columns: predicted grade)');
  });

  it("report rewrites the report train wrote, gallery included, from the run's test images", () => {
    const written = readFileSync(join(runDir, 'report.html'), 'utf8');
    expect(written.match(/<figure class="gallery-item"/g)?.length).toBeGreaterThan(8);
    const reported = cli(['report', runDir, '--data-dir', dataDir]);
    expect(reported.code).toBe(0);
    expect(reported.stdout).toContain(`wrote ${join(runDir, 'report.html')}`);
    expect(readFileSync(join(runDir, 'report.html'), 'utf8')).toBe(written);
    const notRun = cli(['report', work, '--data-dir', dataDir]);
    expect(notRun.code).toBe(1);
    expect(notRun.stderr).toMatch(/is not a finished run: .*metrics\.json is missing/);
  });

  it('predict on PNG exports of test images gives the grades evaluate gave', async () => {
    const data = loadMedMNIST(join(dataDir, 'retinamnist.npz'), 'retinamnist');
    const pngDir = join(work, 'png');
    mkdirSync(pngDir);
    const count = 24;
    for (let i = 0; i < count; i++) {
      const pixels = data.test.images.subarray(i * 28 * 28 * 3, (i + 1) * 28 * 28 * 3);
      await sharp(pixels, { raw: { width: 28, height: 28, channels: 3 } })
        .png()
        .toFile(join(pngDir, `test-${String(i).padStart(3, '0')}.png`));
    }
    const predicted = cli(['predict', '--model', runDir, '--crop', 'none', '--json', pngDir]);
    expect(predicted.code).toBe(0);
    const records = JSON.parse(predicted.stdout).predictions as { grade: number; p_referable: number; status: string }[];
    const expected = readFileSync(join(runDir, 'predictions.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1, count + 1)
      .map((l) => l.split(',').map(Number));
    expect(records.map((r) => r.grade)).toEqual(expected.map((row) => row[2]));
    // The same temperature-scaled P(referable) as train wrote.
    records.forEach((r, i) => expect(r.p_referable).toBeCloseTo(expected[i]![8]!, 5));
    for (const r of records) expect(['graded', 'uncertain']).toContain(r.status);
  });

  it('predict refuses what is not a fundus photograph (exit 2, no grade) unless --force', async () => {
    const blue = join(work, 'blue.png');
    await sharp({ create: { width: 28, height: 28, channels: 3, background: '#0000ff' } })
      .png()
      .toFile(blue);
    for (const crop of ['disc', 'none']) {
      const refused = cli(['predict', '--model', runDir, '--crop', crop, '--json', blue]);
      expect(refused.code).toBe(2);
      const [record] = JSON.parse(refused.stdout).predictions;
      expect(record).toMatchObject({ status: 'refused' });
      expect(record.grade).toBeUndefined();
      expect(cli(['predict', '--model', runDir, '--crop', crop, blue]).stdout).toMatch(/blue\.png: REFUSED not graded: /);
      const forced = cli(['predict', '--model', runDir, '--crop', crop, '--force', '--json', blue]);
      expect(forced.code).toBe(0);
      expect(JSON.parse(forced.stdout).predictions[0].warnings.length).toBeGreaterThan(0);
    }
  });

  it('predict reports a bad file, still grades the others, and exits 1', () => {
    const bad = join(work, 'not-an-image.jpg');
    writeFileSync(bad, 'hello');
    const result = cli(['predict', '--model', runDir, '--json', bad, join(dataDir, '../samples/fundus_a.jpg')]);
    expect(result.code).toBe(1);
    const [failed, graded] = JSON.parse(result.stdout).predictions;
    expect(failed.error).toMatch(/not-an-image\.jpg/);
    expect(graded.grade).toBeTypeOf('number');
  });
});

describe('predict outputs', () => {
  const photo = join(dataDir, '../samples/fundus_a.jpg');

  it('--cam writes one picture per input, even for one name in two formats, and a second run over the folder skips them', () => {
    const folder = mkdtempSync(join(work, 'photos-'));
    for (const name of ['a.jpg', 'a.jpeg']) writeFileSync(join(folder, name), readFileSync(photo));
    const first = cli(['predict', '--model', runDir, '--json', '--cam', folder, folder]);
    expect(first.code).toBe(0);
    const cams = (JSON.parse(first.stdout).predictions as { cam: string }[]).map((r) => r.cam);
    expect(new Set(cams).size).toBe(2);
    for (const cam of cams) expect(existsSync(cam), cam).toBe(true);
    const second = cli(['predict', '--model', runDir, '--json', folder]);
    expect((JSON.parse(second.stdout).predictions as { file: string }[]).map((r) => r.file)).toEqual([
      join(folder, 'a.jpeg'),
      join(folder, 'a.jpg'),
    ]);
  });

  it('--csv carries the not-for-clinical-use notice in every row', () => {
    const result = cli(['predict', '--model', runDir, '--csv', photo]);
    expect(result.code).toBe(0);
    const [header, row] = result.stdout.trim().split('\n');
    expect(header!.split(',').at(-1)).toBe('notice');
    expect(row).toContain('not for clinical use');
  });

  it('reports a folder without images and grades the rest; refuses --json with --csv', () => {
    const empty = mkdtempSync(join(work, 'no-photos-'));
    const none = cli(['predict', '--model', runDir, '--json', empty, photo]);
    expect(none.code).toBe(1);
    const [failed, graded] = JSON.parse(none.stdout).predictions;
    expect(failed.error).toBe(`no PNG, JPEG, TIFF or WebP images in ${empty}`);
    expect(graded.grade).toBeTypeOf('number');
    const both = cli(['predict', '--model', runDir, '--json', '--csv', photo]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--json.*cannot be used with.*--csv/);
  });
});

describe('resume', () => {
  it('a run killed mid-epoch and resumed ends with the metrics of an uninterrupted run', async () => {
    const args = [...common, '--epochs', '3'];
    const straight = join(work, 'straight');
    expect(cli(['train', ...args, '--out', straight]).code).toBe(0);

    const interrupted = join(work, 'interrupted');
    // Killed once the first epoch is logged, i.e. during the second.
    await trainUntilLogged([...args, '--out', interrupted], join(interrupted, 'log.jsonl'));
    expect(existsSync(join(interrupted, 'metrics.json'))).toBe(false);
    expect(cli(['train', ...args, '--out', interrupted, '--resume']).code).toBe(0);

    const a = json(join(straight, 'metrics.json'));
    const b = json(join(interrupted, 'metrics.json'));
    // libtorch's CPU kernels are deterministic for a fixed thread count: equal to float noise.
    for (const key of ['acc', 'auc', 'qwk']) expect(b.test[key]).toBeCloseTo(a.test[key], 6);
    expect(b.best_epoch).toBe(a.best_epoch);
    expect(readFileSync(join(interrupted, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
  }, 300_000);
});

describe('ensemble', () => {
  it('trains its members as sub-runs, resumes the one that was killed, and reloads as one model', async () => {
    const args = [...common, '--epochs', '2', '--ensemble', '2'];
    const straight = join(work, 'ensemble-straight');
    expect(cli(['train', ...args, '--out', straight]).code).toBe(0);
    const a = json(join(straight, 'metrics.json'));
    expect(a.members.map((m: { seed: number }) => m.seed)).toEqual([6, 7]); // seed 3, 2 members
    expect(a.best_epoch).toHaveLength(2);
    const log = readFileSync(join(straight, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((e) => [e.member, e.epoch])).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
    ]);

    // Killed while the second member trains; the first is kept, the second resumed.
    const interrupted = join(work, 'ensemble-interrupted');
    await trainUntilLogged([...args, '--out', interrupted], join(interrupted, 'members', '1', 'log.jsonl'));
    expect(existsSync(join(interrupted, 'metrics.json'))).toBe(false);
    expect(cli(['train', ...args, '--out', interrupted, '--resume']).code).toBe(0);
    const b = json(join(interrupted, 'metrics.json'));
    for (const key of ['acc', 'auc', 'qwk']) expect(b.test[key]).toBeCloseTo(a.test[key], 6);
    expect(readFileSync(join(interrupted, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);

    const evaluated = cli(['evaluate', '--model', straight, '--data-dir', dataDir, '--json']);
    expect(evaluated.code).toBe(0);
    expect(JSON.parse(evaluated.stdout).auc).toBeCloseTo(a.test.auc, 6);
    const predicted = cli(['predict', '--model', straight, '--json', join(dataDir, '../samples/fundus_a.jpg')]);
    expect(predicted.code).toBe(0);
    expect(JSON.parse(predicted.stdout).predictions[0].probabilities.reduce((s: number, p: number) => s + p, 0)).toBeCloseTo(1, 5);

    // --resume with flags that contradict the run (here one model) is refused by name and removes nothing.
    const mismatched = cli(['train', ...common, '--epochs', '2', '--out', straight, '--resume']);
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toContain(`cannot resume ${straight}: --ensemble 1 differs from the run's 2.`);
    expect(existsSync(join(straight, 'members', '1', 'best.safetensors'))).toBe(true);
    expect(json(join(straight, 'metrics.json')).test.auc).toBe(a.test.auc);
  }, 300_000);
});

describe('bad input', () => {
  it('an invalid config file is refused with the field named, exit 1, no stack', () => {
    const config = join(work, 'bad.json');
    writeFileSync(config, JSON.stringify({ epochs: -1, colour: 'blue' }));
    const result = cli(['train', '--config', config, '--out', join(work, 'x')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/epochs/);
    expect(result.stderr).toMatch(/colour/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    [['--batch-size', '1'], /--batch-size/],
    [['--seed', '5000000000'], /seed/],
    [['--loss', 'ordinal', '--class-weights', 'inverse'], /loss 'ordinal' does not use classWeights/],
  ])('train %j is refused before anything is written', (flags, message) => {
    const out = join(work, `refused-${flags.join('')}`);
    const result = cli(['train', ...flags, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    [
      ['--size', '33'],
      ['--size (size)', '28, 64, 128, 224', 'other sizes need a prepared dataset (--data)'],
    ],
    [
      ['--size', '4'],
      ["'--size <px>'", 'an integer >= 8'],
    ],
    [
      ['--arch', 'vgg'],
      ["'--arch <name>'", 'cnn, resnet18, resnet50'],
    ],
    [
      ['--optimizer', 'lion'],
      ["'--optimizer <name>'", 'adamw, adam, sgd'],
    ],
    [
      ['--select-on', 'f1'],
      ["'--select-on <metric>'", 'auc, acc, qwk'],
    ],
    [
      ['--precision', 'fp16'],
      ["'--precision <p>'", 'fp32, bf16'],
    ],
    [
      ['--epochs', '0'],
      ["'--epochs <n>'", 'an integer >= 1'],
    ],
    [
      ['--batch-size', '1'],
      ["'--batch-size <n>'", 'an integer >= 2'],
    ],
    [
      ['--lr', 'fast'],
      ["'--lr <rate>'", 'a number'],
    ],
    [
      ['--ema', '1'],
      ['--ema (ema)', 'expected number to be <1'],
    ],
    [
      ['--recipe', 'fast'],
      ["'--recipe <name>'", 'datasheet, medmnist, default'],
    ],
    [
      ['--epoch', '3'],
      ["unknown option '--epoch'", 'Did you mean --epochs?'],
    ],
    [
      ['--model', 'cnn'],
      ['--arch cnn', '--model names a run directory'],
    ],
  ])('train %j names the flag and what it accepts, in one style, before anything else', (flags, expected) => {
    const result = cli(['train', ...flags, '--print-config']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^retinagrade: error: /);
    for (const text of expected) expect(result.stderr).toContain(text);
    expect(result.stdout).toBe('');
  });

  it("a run's config.json goes back through --config unchanged, and --print-config shows the resolved configuration", () => {
    const printed = cli(['train', '--config', join(runDir, 'config.json'), '--print-config']);
    expect(printed.code).toBe(0);
    expect(JSON.parse(printed.stdout)).toEqual(json(join(runDir, 'config.json')));
    const changed = cli(['train', '--config', join(runDir, 'config.json'), '--arch', 'resnet18', '--print-config']);
    expect(JSON.parse(changed.stdout).model.name).toBe('resnet18');
  });

  it('an unknown key in a config file gets a suggestion and the keys that exist there', () => {
    const config = join(work, 'typo.json');
    writeFileSync(config, JSON.stringify({ epoch: 3, optimizer: { lrr: 0.1 } }));
    const result = cli(['train', '--config', config, '--print-config']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("unknown key 'epoch' (did you mean 'epochs'?)");
    expect(result.stderr).toContain("unknown key 'lrr' in optimizer (did you mean 'lr'?); known keys: name, lr, weightDecay, momentum");
  });

  it('--model given the weights file says to pass the run directory', () => {
    const result = cli(['evaluate', '--model', join(runDir, 'best.safetensors'), '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`best.safetensors is a file: pass the run directory that holds it (${runDir})`);
  });

  it('download defaults to the size train defaults to', () => {
    const help = cli(['download', '--help']).stdout;
    const trainDefault = /--size <px>\s+model input size[^(]*\(default: (\d+)\)/.exec(cli(['train', '--help']).stdout)![1];
    expect(help).toMatch(new RegExp(`--size <px>[^\n]*\n?[^\n]*default: "${trainDefault}"`));
  });

  it('a train that fails for missing data leaves no folder behind', () => {
    const out = join(work, 'no-data');
    const result = cli(['train', ...common.slice(0, -2), '--data-dir', join(work, 'nowhere'), '--no-download', '--out', out], {
      MEDMNIST_DIR: '',
      HOME: work,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('retinamnist.npz');
    expect(existsSync(out)).toBe(false);
  });

  it('a train that fails in its first epoch removes the folder it created', () => {
    const out = join(work, 'diverged');
    const result = cli(['train', ...common, '--epochs', '1', '--lr', '1e30', '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('training diverged at epoch 1');
    expect(existsSync(out)).toBe(false);
  });

  it('an impossible augmentation range in a config file is refused with its field', () => {
    const config = join(work, 'bad-augment.json');
    writeFileSync(config, JSON.stringify({ augment: { resizedCrop: { scale: [1, 0.5] } } }));
    const result = cli(['train', '--config', config, '--out', join(work, 'y')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/resizedCrop\.scale/);
  });

  it('train refuses to replace an existing run unless asked, and leaves it intact', () => {
    const before = readFileSync(join(runDir, 'metrics.json'), 'utf8');
    const result = cli(['train', ...common, '--epochs', '1', '--out', runDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/already holds a run.*--resume.*--overwrite/);
    expect(readFileSync(join(runDir, 'metrics.json'), 'utf8')).toBe(before);
  });

  it('train refuses a folder holding files a run would replace, and leaves them intact', () => {
    const folder = mkdtempSync(join(work, 'mine-'));
    writeFileSync(join(folder, 'predictions.csv'), 'my own predictions\n');
    const result = cli(['train', ...common, '--epochs', '1', '--out', folder]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/holds files a run would replace \(predictions\.csv\).*--overwrite/);
    expect(readFileSync(join(folder, 'predictions.csv'), 'utf8')).toBe('my own predictions\n');
  });

  it('train --resume with no run to resume, or with --overwrite, is refused', () => {
    const empty = mkdtempSync(join(work, 'empty-'));
    const nothing = cli(['train', ...common, '--epochs', '1', '--out', empty, '--resume']);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain(`nothing to resume in ${empty}: it holds no run (no config.json)`);
    const both = cli(['train', ...common, '--epochs', '1', '--out', runDir, '--resume', '--overwrite']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--resume.*cannot be used with.*--overwrite/);
  });

  it('evaluate on a folder that is not a run says what is missing', () => {
    const result = cli(['evaluate', '--model', work, '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/not a finished run directory.*best\.safetensors is missing/);
  });

  it('a missing dataset names where it looked and how to get it', () => {
    const result = cli(['info', '--data-dir', work, '--no-download'], { MEDMNIST_DIR: '', HOME: work });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('retinamnist.npz');
    expect(result.stderr).toContain('retinagrade download');
  });
});

describe('serve', () => {
  it('serves the run on the port the system picks, grades a photograph, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--model', runDir, '--port', '0'], { env: { ...process.env, CI: '1' } });
    const exited = new Promise<number | null>((done) => child.on('exit', done));
    const url = await new Promise<string>((done, fail) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (match) done(match[1]!);
      });
      void exited.then((code) => fail(new Error(`serve exited (${code}) before printing its URL: ${out}`)));
    });
    const response = await fetch(`${url}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: readFileSync(join(dataDir, '../samples/fundus_a.jpg')),
    });
    expect(response.status).toBe(200);
    expect((await response.json()).probabilities).toHaveLength(5);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('a folder that is not a run is one line on stderr and exit 1', () => {
    const result = cli(['serve', '--model', work, '--port', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^retinagrade: error: .*not a finished run directory.*\n$/);
  });
});
