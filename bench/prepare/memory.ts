// Peak RSS of `train --data` on prepared datasets of different sizes: it must not grow with the
// number of photographs (rows are read a batch at a time). The datasets are synthetic
// (synthetic.ts) so that only their size differs.
//   npx tsx bench/prepare/memory.ts [--rows 2000,20000] [--stored 64] [--size 28] [--arch cnn]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, intArg, parseArgs, repoRoot, runMain, writeResults } from '../common.js';
import { syntheticDataset } from './synthetic.js';

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const sizes = (args.get('rows') ?? '2000,20000').split(',').map(Number);
  const stored = intArg(args, 'stored', 64);
  const size = intArg(args, 'size', 28);
  const model = args.get('arch') ?? 'cnn';
  const startLoad = loadavg()[0]!;
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-bench-memory-'));
  const runs = [];
  for (const rows of sizes) {
    const data = join(work, `data-${rows}`);
    syntheticDataset(data, rows, stored);
    const trainArgs = ['train', '--data', data, '--size', String(size), '--arch', model, '--width', '8', '--epochs', '1'];
    const command = [
      join(repoRoot, 'bin', 'retinagrade.js'),
      ...trainArgs,
      '--ensemble',
      '1',
      '--batch-size',
      '128',
      '--out',
      join(work, `run-${rows}`),
    ];
    const started = performance.now();
    // GNU time's %M: the child's peak RSS in KiB.
    const result = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...command], {
      encoding: 'utf8',
      env: { ...process.env, CI: '1' },
    });
    if (result.status !== 0) throw new Error(`train failed:\n${result.stderr.slice(-2000)}`);
    const peakMiB = Number(result.stderr.trim().split('\n').at(-1)) / 1024;
    const fileMiB = (rows * stored * stored * 3) / 2 ** 20;
    runs.push({ rows, stored, size, model, peak_rss_mib: peakMiB, images_mib: fileMiB, seconds: (performance.now() - started) / 1000 });
    process.stdout.write(`${String(rows).padStart(6)} rows (${fmt(fileMiB)} MiB of images): peak RSS ${fmt(peakMiB)} MiB\n`);
  }
  writeResults(join(import.meta.dirname, 'results-memory.json'), 'prepare-memory', startLoad, {
    settings: { sizes, stored, size, model },
    summary: runs,
    runs,
  });
  rmSync(work, { recursive: true, force: true });
});
