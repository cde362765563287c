import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { dataDirCandidates, defaultDataDir, locateDatasetFile } from '../../src/data/locate.js';

const root = mkdtempSync(join(tmpdir(), 'retinagrade-locate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const explicit = join(root, 'explicit');
const fromEnv = join(root, 'env');
const home = join(root, 'home');
for (const dir of [explicit, fromEnv, join(home, '.medmnist')]) mkdirSync(dir, { recursive: true });
const env = { MEDMNIST_DIR: fromEnv };

describe('locating the data', () => {
  it('searches --data-dir, then MEDMNIST_DIR, then ~/.medmnist', () => {
    expect(dataDirCandidates({ dataDir: explicit, env, homeDir: home })).toEqual([
      { dir: explicit, source: '--data-dir' },
      { dir: fromEnv, source: 'MEDMNIST_DIR' },
      { dir: join(home, '.medmnist'), source: 'default' },
    ]);
    expect(defaultDataDir({ env: {}, homeDir: home })).toBe(join(home, '.medmnist'));
    expect(defaultDataDir({ env, homeDir: home })).toBe(fromEnv);
  });

  it('returns the file from the first folder that has it', () => {
    writeFileSync(join(home, '.medmnist', 'retinamnist.npz'), 'x');
    expect(locateDatasetFile('retinamnist', 28, { dataDir: explicit, env, homeDir: home })).toBe(
      join(home, '.medmnist', 'retinamnist.npz'),
    );
    writeFileSync(join(fromEnv, 'retinamnist.npz'), 'x');
    expect(locateDatasetFile('retinamnist', 28, { dataDir: explicit, env, homeDir: home })).toBe(join(fromEnv, 'retinamnist.npz'));
    writeFileSync(join(explicit, 'retinamnist.npz'), 'x');
    expect(locateDatasetFile('retinamnist', 28, { dataDir: explicit, env, homeDir: home })).toBe(join(explicit, 'retinamnist.npz'));
  });

  it('says where it looked and how to get the file when it is missing', () => {
    const find = () => locateDatasetFile('retinamnist', 64, { dataDir: explicit, env, homeDir: home });
    expect(find).toThrow(UserError);
    expect(find).toThrow(
      [
        'retinamnist_64.npz (retinamnist at 64x64) not found. Looked in:',
        `  ${explicit} (--data-dir)`,
        `  ${fromEnv} (MEDMNIST_DIR)`,
        `  ${join(home, '.medmnist')} (default)`,
        'Get it with: retinagrade download --dataset retinamnist --size 64',
        'or by hand: download https://zenodo.org/records/10519652/files/retinamnist_64.npz?download=1',
        `  (md5 afda852cc34dcda56f86ad2b2457dbcc) and put it in ${explicit}`,
      ].join('\n'),
    );
  });
});
