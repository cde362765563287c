// The npm package as a user gets it: `npm pack`, installed into a fresh folder, imported by name
// from a plain ESM script (and type-checked from TypeScript), grading the sample photographs with
// the same records `predict --json` prints.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { untrainedRun } from '../helpers/untrained-run.js';

const root = resolve(import.meta.dirname, '../..');
const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data'), '../samples');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-package-'));
const app = join(work, 'app');
const run = untrainedRun(2);
const photos = readdirSync(samples)
  .filter((name) => /\.(jpe?g|png)$/i.test(name))
  .sort()
  .map((name) => join(samples, name));

/**
 * The registry is not used in tests: a lockfile made from ours lets `npm ci --offline` take the
 * package's dependencies from npm's cache (filled by this checkout's own install).
 */
function writeOfflineLockfile(tarball: string): void {
  const ours = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const self = ours.packages[''];
  const packages: Record<string, object> = {
    '': { name: 'app', dependencies: { retinagrade: `file:${tarball}` } },
    'node_modules/retinagrade': { version: self.version, resolved: `file:${tarball}`, dependencies: self.dependencies, bin: self.bin },
  };
  for (const [path, entry] of Object.entries<{ dev?: boolean; version: string }>(ours.packages)) {
    if (!path || entry.dev) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[path] = { ...entry, resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz` };
  }
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: root, stdio: 'pipe' });
  const tarball = join(work, readdirSync(work).find((name) => name.endsWith('.tgz'))!);
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { retinagrade: `file:${tarball}` } }),
  );
  writeOfflineLockfile(tarball);
  // --ignore-scripts: the install script would compile the binding (minutes); the one this checkout
  // built is what it makes, so it is copied to where the installed package looks for it.
  execFileSync('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe' });
  const release = join(app, 'node_modules/retinagrade/native/build/Release');
  mkdirSync(release, { recursive: true });
  copyFileSync(join(root, 'native/build/Release/retinagrade_torch.node'), join(release, 'retinagrade_torch.node'));
}, 180_000);

describe('the installed package', () => {
  it('holds the compiled library, the binding sources and the command, not the tests or interop/', () => {
    const installed = join(app, 'node_modules/retinagrade');
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'bin/retinagrade.js', 'native/binding.gyp', 'native/src/binding.cc']) {
      expect(existsSync(join(installed, file)), file).toBe(true);
    }
    for (const folder of ['src', 'test', 'interop', 'bench']) expect(existsSync(join(installed, folder)), folder).toBe(false);
  });

  it('grades the sample photographs from a plain ESM script as `predict --json` does', () => {
    writeFileSync(
      join(app, 'grade.mjs'),
      `import { readFileSync } from 'node:fs';
import { openModel, NOT_FOR_CLINICAL_USE } from 'retinagrade';
const [runDir, ...photos] = process.argv.slice(2);
const model = await openModel(runDir);
const batch = await model.gradeBatch(photos);
const fromBytes = await model.grade({ name: photos[0], bytes: readFileSync(photos[0]) });
const { camPng, ...camRecord } = await model.gradcam(photos[0]);
model.dispose();
const cam = { camBytes: camPng.length, camSignature: [...camPng.slice(1, 4)] };
console.log(JSON.stringify({ notice: NOT_FOR_CLINICAL_USE, info: model.info, batch, fromBytes, camRecord, ...cam }));
`,
    );
    const script = spawnSync(process.execPath, ['grade.mjs', run, ...photos], { cwd: app, encoding: 'utf8' });
    expect(script.stderr).toBe('');
    const out = JSON.parse(script.stdout);
    const predict = spawnSync(process.execPath, [join(root, 'bin/retinagrade.js'), 'predict', '--model', run, '--json', ...photos], {
      encoding: 'utf8',
    });
    expect(predict.status).toBe(0);
    const printed = JSON.parse(predict.stdout);
    expect(photos.length).toBeGreaterThan(0);
    expect(out.batch).toEqual(printed.predictions);
    expect(out.batch[0]).toMatchObject({ file: photos[0], grade: expect.any(Number), grade_name: expect.any(String) });
    expect(out.fromBytes).toEqual(printed.predictions[0]);
    expect(out.camRecord).toEqual(printed.predictions[0]);
    expect(String.fromCharCode(...out.camSignature)).toBe('PNG');
    expect(out.camBytes).toBeGreaterThan(100);
    expect(out.info).toMatchObject({ ensemble: 2, modelConfig: { name: 'cnn', inputSize: 28 } });
    expect(out.notice).toBe(printed.disclaimer);
  });

  it('type-checks a TypeScript program that uses it', () => {
    writeFileSync(
      join(app, 'use.ts'),
      `import { openModel, type Prediction } from 'retinagrade';
const model = await openModel('run');
const record: Prediction = await model.grade(new Uint8Array(0), { crop: 'disc' });
const size: number = model.info.modelConfig.inputSize;
console.log(record.grade_name, size);
// @ts-expect-error: crop takes 'disc' or 'none'
await model.grade('photo.jpg', { crop: 'centre' });
`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const options = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
    ];
    const checked = spawnSync(process.execPath, [tsc, ...options, '--typeRoots', join(root, 'node_modules/@types'), 'use.ts'], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(checked.stdout).toBe('');
    expect(checked.status).toBe(0);
  });
});
