// Peak RSS of `train --data` on prepared datasets of different sizes: it must not grow with the
// number of photographs (rows are read a batch at a time). The datasets are synthetic (a sparse
// image file of zeros, grades 0..4 in turn) so that only their size differs.
//   npx tsx bench/prepare/memory.ts [--rows 2000,20000] [--stored 64] [--size 28] [--arch cnn]
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRADE_NAMES, NUM_GRADES } from '../../src/data/grades.js';
import { NPY_HEADER_BYTES, npyHeader } from '../../src/data/npy.js';
import { DATASET_FILE, DATASET_FORMAT, type DatasetJson, imagesFile, labelsFile, md5OfFile } from '../../src/data/prepared-dataset.js';
import { SPLITS } from '../../src/data/registry.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import { fmt, intArg, parseArgs, repoRoot, runMain, writeResults } from '../common.js';

function syntheticDataset(dir: string, rows: number, stored: number): void {
  mkdirSync(dir, { recursive: true });
  const counts = {
    train: Math.round(rows * 0.7),
    val: Math.round(rows * 0.1),
    test: rows - Math.round(rows * 0.7) - Math.round(rows * 0.1),
  };
  const splits = {} as DatasetJson['splits'];
  for (const split of SPLITS) {
    const n = counts[split];
    const fd = openSync(join(dir, imagesFile(split)), 'w');
    writeSync(fd, npyHeader([n, stored, stored, 3]));
    ftruncateSync(fd, NPY_HEADER_BYTES + n * stored * stored * 3);
    closeSync(fd);
    const grades = Array.from({ length: n }, (_, i) => i % NUM_GRADES);
    writeFileSync(join(dir, labelsFile(split)), Buffer.concat([npyHeader([n]), Buffer.from(grades)]));
    const perGrade = GRADE_NAMES.map((_, g) => grades.filter((x) => x === g).length);
    splits[split] = {
      count: n,
      per_grade: perGrade,
      images: imagesFile(split),
      labels: labelsFile(split),
      images_md5: md5OfFile(join(dir, imagesFile(split))),
      labels_md5: md5OfFile(join(dir, labelsFile(split))),
      sources: grades.map((_, i) => `synthetic/${split}/${i}`),
    };
  }
  const card: DatasetJson = {
    format: DATASET_FORMAT,
    name: `synthetic-${rows}`,
    request: {},
    source: { layout: 'grade-folders', groups: 'none' },
    grades: [...GRADE_NAMES],
    size: stored,
    channels: 3,
    preprocessing: { crop: 'retina-disc', resize: 'synthetic zeros', decode: 'none' },
    splits,
    skipped: [],
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
  writeFileSync(join(dir, DATASET_FILE), JSON.stringify(card));
}

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
