import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/main.js';
import { closestMatch } from '../../../src/cli/options.js';
import { CONFIG_FLAGS, resolveRunConfig, resumedRunConfig } from '../../../src/cli/train/config-flags.js';
import { prepareDataset } from '../../../src/data/prepare/prepare.js';
import { legacySavedConfigOf, savedConfigOf } from '../../../src/train/config.js';
import { cpuHasBf16 } from '../../../src/torch/index.js';
import { dataDir } from '../../data/prepare/make-sources.js';

/** A folder holding a run's config.json, as train writes it (or in the legacy form). */
function runWithConfig(saved: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'retinagrade-config-flags-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(saved));
  return dir;
}

describe('the flag table', () => {
  it('has a row for every train flag that sets the run configuration, and each sets its key', () => {
    const train = buildProgram().commands.find((c) => c.name() === 'train')!;
    const notConfig = [
      '--out',
      '--data-dir',
      '--no-download',
      '--mirror',
      '--config',
      '--model',
      '--resume',
      '--overwrite',
      '--nproc',
      '--dist-timeout',
    ];
    const configFlags = train.options.map((o) => o.long!).filter((f) => ![...notConfig, '--print-config', '--json'].includes(f));
    expect(new Set(configFlags)).toEqual(new Set(CONFIG_FLAGS.map((e) => e.flag)));
    const flags = { arch: 'resnet18', batchSize: 32, labelSmoothing: 0.1, augment: false, selectOn: 'qwk', syncBatchNorm: true };
    const config = resolveRunConfig(flags);
    const { model, batchSize, loss, augment, selectOn, syncBatchNorm } = config;
    expect([model.name, batchSize, loss.labelSmoothing, augment, selectOn, syncBatchNorm]).toEqual([
      'resnet18',
      32,
      0.1,
      false,
      'qwk',
      true,
    ]);
    expect(resolveRunConfig({}).syncBatchNorm).toBeUndefined(); // per-rank statistics unless asked
  });
});

describe('the input size on a prepared dataset', async () => {
  // One prepared card, copied with other stored sizes: resolving the config reads only dataset.json.
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-config-size-'));
  await prepareDataset({ source: join(dataDir, 'retinamnist.npz'), out: join(work, 'npz') });
  const card = JSON.parse(readFileSync(join(work, 'npz', 'dataset.json'), 'utf8'));
  const preparedAt = (size: number): string => {
    const dir = join(work, `at-${size}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ ...card, size }));
    return dir;
  };
  const [at28, at128, at320] = [preparedAt(28), preparedAt(128), preparedAt(320)];

  it("defaults to the datasheet's 64 where the stored size allows, else the stored size; RetinaMNIST keeps 28", () => {
    expect(resolveRunConfig({ data: at128 }).size).toBe(64);
    expect(resolveRunConfig({ data: at320 }).size).toBe(64);
    expect(resolveRunConfig({ data: at28 }).size).toBe(28);
    expect(resolveRunConfig({}).size).toBe(28);
    expect(resolveRunConfig({ data: at128, size: 96 }).size).toBe(96);
    const file = join(work, 'sized.json');
    writeFileSync(file, JSON.stringify({ size: 128 }));
    expect(resolveRunConfig({ data: at320, config: file }).size).toBe(128);
  });

  it('takes sizes above 224 with --data (the stored size is checked when training starts); RetinaMNIST only its files', () => {
    expect(resolveRunConfig({ data: at320, size: 288 }).size).toBe(288);
    expect(() => resolveRunConfig({ size: 288 })).toThrow(
      "--size (size): expected one of 28, 64, 128, 224 (RetinaMNIST's files); other sizes need a prepared dataset (--data)",
    );
    expect(() => resolveRunConfig({ data: join(work, 'nothing') })).toThrow(/nothing is not a prepared dataset/);
  });
});

describe('resuming from config.json', () => {
  const config = resolveRunConfig({ epochs: 100, arch: 'cnn' });

  it('takes the run configuration from config.json with no flags, and lets --threads change', () => {
    const dir = runWithConfig(savedConfigOf(config));
    expect(resumedRunConfig(dir, {})).toEqual({ ...config, threads: undefined });
    expect(resumedRunConfig(dir, { threads: 3, epochs: 100 })?.threads).toBe(3);
    expect(resumedRunConfig(join(dir, 'nothing-here'), {})).toBeUndefined();
  });

  it('names each flag or config-file key that contradicts the run', () => {
    const dir = runWithConfig(savedConfigOf(config));
    expect(() => resumedRunConfig(dir, { epochs: 30 })).toThrow("--epochs 30 differs from the run's 100");
    expect(() => resumedRunConfig(dir, { augment: false, arch: 'resnet18' })).toThrow(/--arch "resnet18" differs from the run's "cnn"/);
    const file = join(dir, 'other.json');
    writeFileSync(file, JSON.stringify({ optimizer: { lr: 0.5 } }));
    expect(() => resumedRunConfig(dir, { config: file })).toThrow(`optimizer.lr 0.5 in ${file} differs from the run's 0.001`);
  });

  it('keeps --data and --init of a run on a prepared dataset, and names them when they contradict it', () => {
    const prepared = resolveRunConfig({ arch: 'cnn', data: 'data/aptos-224', init: 'runs/base', size: 224 });
    const dir = runWithConfig(savedConfigOf(prepared));
    expect(resumedRunConfig(dir, {})).toMatchObject({ data: 'data/aptos-224', init: 'runs/base' });
    expect(() => resumedRunConfig(dir, { data: 'data/other' })).toThrow(`--data "data/other" differs from the run's "data/aptos-224"`);
    expect(() => resumedRunConfig(dir, { init: 'runs/x' })).toThrow(`--init "runs/x" differs from the run's "runs/base"`);
  });

  it('reads a config.json in the legacy form (the model as built)', () => {
    const sized = resolveRunConfig({ size: 64 });
    const dir = runWithConfig({ ...legacySavedConfigOf(sized), threads: 2 });
    expect(resumedRunConfig(dir, {})?.size).toBe(64);
    expect(() => resumedRunConfig(dir, { size: 28 })).toThrow("--size 28 differs from the run's 64");
  });
});

describe('closestMatch', () => {
  it('suggests near misses only', () => {
    expect(closestMatch('epoch', ['epochs', 'ensemble', 'ema'])).toBe('epochs');
    expect(closestMatch('BatchSize', ['batchSize', 'seed'])).toBe('batchSize');
    expect(closestMatch('colour', ['size', 'model', 'loss'])).toBeUndefined();
  });
});

describe('--precision', () => {
  it('sets the run precision (the default recipe: bf16 where the CPU has it), and a config file naming another is refused', () => {
    expect(resolveRunConfig({ precision: 'bf16' }).precision).toBe('bf16');
    expect(resolveRunConfig({ precision: 'fp32' }).precision).toBe('fp32');
    expect(resolveRunConfig({}).precision).toBe(cpuHasBf16() ? 'bf16' : undefined);
    // The published recipes stay fp32 (absent).
    expect(resolveRunConfig({ recipe: 'datasheet' }).precision).toBeUndefined();
    expect(resolveRunConfig({ recipe: 'medmnist' }).precision).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-precision-'));
    const file = join(dir, 'fp16.json');
    writeFileSync(file, JSON.stringify({ precision: 'fp16' }));
    expect(() => resolveRunConfig({ config: file })).toThrow(/--precision \(precision\): .*"fp32"\|"bf16"/);
  });
});
