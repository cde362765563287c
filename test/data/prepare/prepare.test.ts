// prepare on source folders built here, in each supported layout, with faults mixed in.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as XLSX from '@e965/xlsx';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { preprocessFundus } from '../../../src/data/fundus.js';
import { NpyRowReader, parseNpyHeader } from '../../../src/data/npy.js';
import { prepareDataset } from '../../../src/data/prepare/prepare.js';
import { type DatasetJson, md5OfFile, readDatasetJson } from '../../../src/data/prepared-dataset.js';
import { loadMedMNIST } from '../../../src/data/medmnist.js';
import { SPLITS } from '../../../src/data/registry.js';
import { UserError } from '../../../src/errors.js';
import { copySamples, dataDir, exportImage, exportMany, writeCsv, writeFaultyImages } from './make-sources.js';

const work = mkdtempSync(join(tmpdir(), 'retinagrade-prepare-'));
const SIZE = 32;

/** Every stored row equals a direct decode of its source photograph (the row order of dataset.json's sources). */
async function expectRowsMatchSources(out: string, source: string, card: DatasetJson): Promise<void> {
  for (const split of SPLITS) {
    const reader = new NpyRowReader(join(out, card.splits[split].images));
    expect(reader.shape).toEqual([card.splits[split].count, SIZE, SIZE, 3]);
    for (const [row, id] of card.splits[split].sources.entries()) {
      const direct = await preprocessFundus(join(source, id), SIZE);
      expect(Buffer.from(reader.read([row])).equals(Buffer.from(direct.pixels)), `${split} row ${row} (${id})`).toBe(true);
    }
    reader.close();
  }
}

const reasonsOf = (card: DatasetJson) => Object.fromEntries(card.skipped.map((s) => [s.input, s.reason]));
const total = (card: DatasetJson) => SPLITS.reduce((sum, s) => sum + card.splits[s].count, 0);

describe('prepare: APTOS layout (train.csv id_code,diagnosis + PNG/JPEG folder)', async () => {
  const source = join(work, 'aptos', 'train_images');
  const exported = await exportMany(source, 24, (i, ext) => `img${String(i).padStart(3, '0')}.${ext}`);
  const samples = copySamples(source, (f) => `sample_${f}`);
  await writeFaultyImages(source, { truncated: 'truncated.jpg', bomb: 'bomb.png', notFundus: 'noise.png' });
  mkdirSync(join(source, 'unlisted'), { recursive: true });
  await exportMany(join(source, 'unlisted'), 1, () => 'stray.png', 50);
  const stem = (name: string) => name.replace(/\.[a-z]+$/, '');
  const rows: (string | number)[][] = [
    ...exported.map((e) => [stem(e.name), e.grade]),
    ...samples.map((s, k) => [s, k % 5]), // with extension
    ['truncated', 1],
    ['bomb', 2],
    ['noise', 0],
    ['missing_image', 3],
    [stem(exported[0]!.name), exported[0]!.grade], // duplicate id
  ];
  rows[1] = [stem(exported[1]!.name), 7]; // grade out of range
  rows[2] = [stem(exported[2]!.name), 'moderate-ish']; // not a number
  const labels = join(work, 'aptos', 'train.csv');
  writeCsv(labels, ['id_code', 'diagnosis'], rows);
  const out = join(work, 'aptos-prepared');
  const result = await prepareDataset({ source, labels, out, size: SIZE, concurrency: 3 });
  const card = readDatasetJson(out);

  it('detects the columns and keeps every usable photograph', () => {
    expect(card.source).toEqual({ layout: 'labels-csv', columns: { image: 'id_code', grade: 'diagnosis' }, groups: 'none' });
    expect(result.decoded).toBe(22 + samples.length + 3);
    expect(total(card)).toBe(22 + samples.length);
    for (const split of SPLITS) expect(card.splits[split].per_grade.reduce((a, b) => a + b, 0)).toBe(card.splits[split].count);
  });

  it('skips each fault with its reason', () => {
    const reasons = reasonsOf(card);
    expect(card.skipped).toHaveLength(8);
    expect(reasons['train.csv row 3 (img001)']).toMatch(/grade 7 is outside 0-4/);
    expect(reasons['train.csv row 4 (img002)']).toMatch(/not a number or a grade name/);
    expect(reasons[`train.csv row ${rows.length} (missing_image)`]).toMatch(/no image file named 'missing_image'/);
    expect(reasons[`train.csv row ${rows.length + 1} (img000)`]).toMatch(/duplicate id: img000.png is already labelled in row 2/);
    expect(reasons['unlisted/stray.png']).toBe('no row in train.csv');
    expect(reasons['truncated.jpg']).toMatch(/truncated or corrupt/);
    expect(reasons['bomb.png']).toMatch(/64 megapixels, over the 50 megapixel limit/);
    expect(reasons['noise.png']).toMatch(/does not look like a fundus photograph/);
  });

  it('stores each photograph as its direct decode, with the grades and md5s dataset.json records', async () => {
    await expectRowsMatchSources(out, source, card);
    const gradeOf = new Map<string, number>(rows.map((r) => [String(r[0]), Number(r[1])]));
    for (const split of SPLITS) {
      const s = card.splits[split];
      const bytes = readFileSync(join(out, s.labels));
      const grades = Array.from(bytes.subarray(parseNpyHeader(bytes, s.labels).offset));
      expect(grades).toEqual(s.sources.map((id) => gradeOf.get(id) ?? gradeOf.get(stem(id))));
      expect(md5OfFile(join(out, s.images))).toBe(s.images_md5);
      expect(md5OfFile(join(out, s.labels))).toBe(s.labels_md5);
    }
    expect(existsSync(join(out, 'progress.jsonl'))).toBe(false);
  });

  it('does nothing the second time, refuses another source, and replaces it with --overwrite', async () => {
    const again = await prepareDataset({ source, labels, out, size: SIZE });
    expect(again.alreadyPrepared).toBe(true);
    await expect(prepareDataset({ source, labels, out, size: SIZE * 2 })).rejects.toThrow(
      /prepared from another source or with other options/,
    );
    const before = md5OfFile(join(out, 'dataset.json'));
    const other = join(work, 'grades-other');
    await exportMany(other, 4, (i, ext) => `${i % 2}/x${i}.${ext}`);
    await expect(prepareDataset({ source: other, out, size: SIZE })).rejects.toThrow(UserError);
    expect(md5OfFile(join(out, 'dataset.json'))).toBe(before);
    const replaced = await prepareDataset({ source: other, out, size: SIZE, overwrite: true, val: 0, test: 0.25 });
    expect(total(replaced.card)).toBe(4);
    expect(readDatasetJson(out).source.layout).toBe('grade-folders');
  });

  it('--strict refuses the first skip with its reason', async () => {
    await expect(prepareDataset({ source, labels, out: join(work, 'strict'), size: SIZE, strict: true })).rejects.toThrow(
      /--strict: 5 input\(s\) would be skipped:\n {2}train.csv row 3 \(img001\): grade 7/,
    );
  });
});

/** No patient's photographs in two splits. */
function expectPatientsInOneSplit(card: DatasetJson, patientOf: (id: string) => string): void {
  const splitOf = new Map<string, string>();
  for (const split of SPLITS) {
    for (const id of card.splits[split].sources) {
      const patient = patientOf(id);
      expect(splitOf.get(patient) ?? split, `patient ${patient}`).toBe(split);
      splitOf.set(patient, split);
    }
  }
  expect(new Set(splitOf.values()).size).toBe(3);
}

describe('prepare: patients', () => {
  it('EyePACS (trainLabels.csv image,level; <patient>_left/right.jpeg): patients from the names', async () => {
    const source = join(work, 'eyepacs', 'train');
    const exported = await exportMany(source, 30, (i) => `${10 + Math.floor(i / 2)}_${i % 2 ? 'right' : 'left'}.jpeg`, 100);
    const labels = join(work, 'eyepacs', 'trainLabels.csv');
    writeCsv(
      labels,
      ['image', 'level'],
      exported.map((e) => [e.name.replace('.jpeg', ''), e.grade]),
    );
    const { card } = await prepareDataset({ source, labels, out: join(work, 'eyepacs-prepared'), size: SIZE, val: 0.2, test: 0.2 });
    expect(card.source.groups).toBe('eyepacs-names');
    expect(total(card)).toBe(30);
    expectPatientsInOneSplit(card, (id) => id.split('_')[0]!);
  });

  it('DeepDRiD (patient_id,image_id,image_path,patient_DR_Level): patients from the column', async () => {
    const source = join(work, 'deepdrid');
    const exported = await exportMany(source, 24, (i, ext) => `Images/${Math.floor(i / 4)}/${Math.floor(i / 4)}_${i % 4}.${ext}`, 200);
    const labels = join(work, 'deepdrid.csv');
    const rows = exported.map((e) => {
      const patient = e.name.split('/')[1]!;
      return [`p${patient}`, e.name.split('/')[2]!.replace(/\.[a-z]+$/, ''), e.name, e.grade];
    });
    writeCsv(labels, ['patient_id', 'image_id', 'image_path', 'patient_DR_Level'], rows);
    const { card } = await prepareDataset({ source, labels, out: join(work, 'deepdrid-prepared'), size: SIZE, val: 0.2, test: 0.2 });
    expect(card.source).toMatchObject({ columns: { image: 'image_id', grade: 'patient_DR_Level', group: 'patient_id' }, groups: 'column' });
    expectPatientsInOneSplit(card, (id) => id.split('/')[1]!);
  });
});

describe('prepare: given splits, grade folders, a MedMNIST npz', () => {
  it('IDRiD/Messidor (Image name, Retinopathy grade, Set): keeps the given split, draws val from train', async () => {
    const source = join(work, 'idrid');
    const exported = await exportMany(source, 20, (i, ext) => `IDRiD_${String(i).padStart(3, '0')}.${ext}`, 300);
    const labels = join(work, 'idrid.csv');
    writeCsv(
      labels,
      ['Image name', 'Retinopathy grade', 'Set'],
      exported.map((e, i) => [e.name.replace(/\.[a-z]+$/, ''), e.grade, i < 15 ? 'Train' : 'Test']),
    );
    const { card } = await prepareDataset({ source, labels, out: join(work, 'idrid-prepared'), size: SIZE, val: 0.2 });
    expect(card.source.columns).toEqual({ image: 'Image name', grade: 'Retinopathy grade', split: 'Set' });
    expect(card.splits.test.sources).toEqual(exported.slice(15).map((e) => e.name));
    expect(card.splits.train.count + card.splits.val.count).toBe(15);
    expect(card.splits.val.count).toBeGreaterThan(0);
  });

  it('an Excel labels file (IDRiD .xlsx, numeric grade cells, the first sheet) is read with the same column detection', async () => {
    const source = join(work, 'idrid-xlsx');
    const exported = await exportMany(source, 10, (i, ext) => `IDRiD_${String(i).padStart(3, '0')}.${ext}`, 320);
    const stem = (name: string) => name.replace(/\.[a-z]+$/, '');
    const sheet = XLSX.utils.aoa_to_sheet([
      ['Image name', 'Retinopathy grade', 'Risk of macular edema '],
      ...exported.map((e) => [stem(e.name), e.grade, 0]),
      ['IDRiD_999', 2, 0], // no such image
    ]);
    const book = XLSX.utils.book_new();
    XLSX.utils.book_append_sheet(book, sheet, 'Training Set');
    XLSX.utils.book_append_sheet(book, XLSX.utils.aoa_to_sheet([['unrelated']]), 'Notes');
    const labels = join(work, 'IDRiD_Disease Grading_Training Labels.xlsx');
    writeFileSync(labels, XLSX.write(book, { type: 'buffer', bookType: 'xlsx' }));
    const { card } = await prepareDataset({ source, labels, out: join(work, 'idrid-xlsx-prepared'), size: SIZE });
    expect(card.source.layout).toBe('labels-excel');
    expect(card.source.columns).toEqual({ image: 'Image name', grade: 'Retinopathy grade' });
    expect(total(card)).toBe(10);
    const gradeOf = new Map(exported.map((e) => [e.name, e.grade]));
    for (const split of SPLITS) {
      const bytes = readFileSync(join(work, 'idrid-xlsx-prepared', card.splits[split].labels));
      const grades = Array.from(bytes.subarray(parseNpyHeader(bytes, split).offset));
      expect(grades).toEqual(card.splits[split].sources.map((id) => gradeOf.get(id)));
    }
    expect(reasonsOf(card)).toEqual({
      'IDRiD_Disease Grading_Training Labels.xlsx row 12 (IDRiD_999)': "no image file named 'IDRiD_999' under the source folder",
    });

    const broken = join(work, 'broken.xlsx');
    writeFileSync(broken, 'PK\u0003\u0004 not really a workbook');
    await expect(prepareDataset({ source, labels: broken, out: join(work, 'broken-prepared') })).rejects.toThrow(
      /broken.xlsx: not a readable Excel workbook/,
    );
  });

  it('one folder per grade, by number or by name; images outside them are skipped', async () => {
    const source = join(work, 'folders');
    const byNumber = await exportMany(source, 10, (i, ext) => `${i % 5}/a${i}.${ext}`, 400);
    await exportMany(source, 3, (i, ext) => `${['No DR', 'mild', 'PROLIFERATIVE DR'][i]}/b${i}.${ext}`, 420);
    await exportMany(source, 1, () => 'loose.png', 430);
    await exportMany(source, 1, () => '9/c.png', 431);
    const { card } = await prepareDataset({ source, out: join(work, 'folders-prepared'), size: SIZE });
    expect(total(card)).toBe(13);
    const perGrade = SPLITS.map((s) => card.splits[s].per_grade).reduce((a, b) => a.map((v, k) => v + b[k]!));
    expect(perGrade).toEqual([3, 3, 2, 2, 3]);
    expect(card.skipped.map((s) => s.input).sort()).toEqual(['9/c.png', 'loose.png']);
    expect(byNumber).toHaveLength(10);
  });

  it('decodes 16-bit, palette, CMYK and EXIF-rotated photographs to the pixels of the plain one', async () => {
    const dir = join(work, 'encodings');
    const plainFile = join(dir, '0', 'plain.png');
    await exportImage(plainFile, 600, 240, 'png');
    const plain = readFileSync(plainFile);
    await sharp(plain)
      .toColourspace('rgb16')
      .png()
      .toFile(join(dir, '0', 'sixteen-bit.png'));
    await sharp(plain)
      .png({ palette: true, colours: 256, dither: 0 })
      .toFile(join(dir, '0', 'palette.png'));
    await sharp(plain)
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toFile(join(dir, '0', 'cmyk.jpg'));
    // Stored turned a quarter to the left, with EXIF orientation 6 (display turned a quarter to the right).
    await sharp(plain)
      .rotate(270)
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95 })
      .toFile(join(dir, '0', 'exif-rotated.jpg'));
    const out = join(work, 'encodings-prepared');
    const { card } = await prepareDataset({ source: dir, out, size: SIZE, val: 0, test: 0 });
    expect(card.skipped).toEqual([]);
    const reader = new NpyRowReader(join(out, card.splits.train.images));
    const row = (id: string) => Array.from(reader.read([card.splits.train.sources.indexOf(`0/${id}`)]));
    const reference = row('plain.png');
    const meanError = (id: string) => row(id).reduce((sum, v, i) => sum + Math.abs(v - reference[i]!), 0) / reference.length;
    expect(meanError('sixteen-bit.png')).toBeLessThan(0.5);
    expect(meanError('palette.png')).toBeLessThan(3);
    expect(meanError('cmyk.jpg')).toBeLessThan(8); // sRGB -> CMYK -> sRGB through ICC profiles is itself lossy
    expect(meanError('exif-rotated.jpg')).toBeLessThan(3);
    reader.close();
  });

  it('a RetinaMNIST npz keeps its splits, labels and pixels', async () => {
    const npz = join(dataDir, 'retinamnist.npz');
    const { card } = await prepareDataset({ source: npz, out: join(work, 'npz-prepared') });
    const loaded = loadMedMNIST(npz, 'retinamnist');
    expect(card.size).toBe(28);
    expect(card.preprocessing.crop).toBe('medmnist');
    for (const split of SPLITS) {
      expect(card.splits[split].count).toBe(loaded[split].count);
      const reader = new NpyRowReader(join(work, 'npz-prepared', card.splits[split].images));
      const rows = [0, loaded[split].count - 1];
      expect(Buffer.from(reader.read(rows))).toEqual(
        Buffer.concat(rows.map((r) => Buffer.from(loaded[split].images.subarray(r * 2352, (r + 1) * 2352)))),
      );
      reader.close();
    }
  });

  it('bad options and sources are errors naming them', async () => {
    const out = join(work, 'bad');
    mkdirSync(join(work, 'foreign'));
    writeFileSync(join(work, 'foreign', 'train_images.npy'), 'not ours');
    await expect(prepareDataset({ source: join(work, 'idrid'), out: join(work, 'foreign') })).rejects.toThrow(
      /foreign holds files prepare would replace \(train_images.npy\)/,
    );
    expect(readFileSync(join(work, 'foreign', 'train_images.npy'), 'utf8')).toBe('not ours');
    await expect(prepareDataset({ source: join(work, 'nowhere'), out })).rejects.toThrow(/nowhere: cannot read the source/);
    await expect(prepareDataset({ source: join(work, 'idrid'), out, val: 0.5, test: 0.5 })).rejects.toThrow(/--val 0.5 \+ --test 0.5/);
    const labels = join(work, 'nocolumns.csv');
    writeFileSync(labels, 'foo,bar\n1,2\n');
    await expect(prepareDataset({ source: join(work, 'idrid'), labels, out })).rejects.toThrow(
      /nocolumns.csv: cannot tell which column holds the image \(header: foo, bar\); name it with --image-column/,
    );
    await expect(prepareDataset({ source: join(work, 'idrid'), labels, out, columns: { image: 'foo', grade: 'baz' } })).rejects.toThrow(
      /no column 'baz' \(--grade-column\)/,
    );
  });
});
