// Synthetic prepared datasets for the benchmarks: dataset.json and .npy files as `prepare` writes
// them, of any row count and stored size, made in a moment.
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GRADE_NAMES, NUM_GRADES } from '../../src/data/grades.js';
import { NPY_HEADER_BYTES, npyHeader } from '../../src/data/npy.js';
import { DATASET_FILE, DATASET_FORMAT, type DatasetJson, imagesFile, labelsFile, md5OfFile } from '../../src/data/prepared-dataset.js';
import { SPLITS } from '../../src/data/registry.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';

/**
 * Writes a prepared dataset of `rows` images stored at `stored` px: 70/10/20% train/val/test,
 * grades 0..4 in turn, the image arrays sparse files of zeros (nothing is written but the
 * headers, so 20,000 rows at 224 px cost no disk). Both sides of a benchmark read the same bytes.
 */
export function syntheticDataset(dir: string, rows: number, stored: number): void {
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
