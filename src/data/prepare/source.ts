// What a source folder holds, before any photograph is decoded: the list of (image file, grade,
// patient, split) it names, and every input that cannot be used with the reason why. Two layouts:
// a labels file naming the images (CSV, or an Excel workbook's first sheet as IDRiD and Messidor ship
// them; APTOS, EyePACS, IDRiD, Messidor, DeepDRiD exports: columns are detected by name), or one
// subfolder per grade.
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join, sep } from 'node:path';
import { createRequire } from 'node:module';
import type * as Sheets from '@e965/xlsx';
import { parse } from 'csv-parse/sync';
import { UserError } from '../../errors.js';
import { readRegularFileSync } from '../../io/regular-file.js';
import { GRADE_NAMES, NUM_GRADES } from '../grades.js';
import type { Split } from '../registry.js';

/** A labels file of a few hundred thousand rows is a few MiB: far more is not a labels file. */
const MAX_LABELS_BYTES = 256 * 2 ** 20;

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.webp']);

export interface SourceEntry {
  /** The image's path relative to the source folder, with '/' separators: its name in dataset.json. */
  id: string;
  file: string;
  grade: number;
  /** The patient, when known: no patient is split across train, val and test. */
  group?: string;
  /** The split the labels file gave. */
  split?: Split;
}

export interface Skip {
  /** The file or labels row concerned. */
  input: string;
  reason: string;
}

export interface Columns {
  image: string;
  grade: string;
  group?: string;
  split?: string;
}

export interface SourceListing {
  layout: 'labels-csv' | 'labels-excel' | 'grade-folders';
  columns?: Columns;
  /** How patients were found: a column, EyePACS-style names (`10_left`), or not at all. */
  groups: 'column' | 'eyepacs-names' | 'none';
  entries: SourceEntry[];
  skipped: Skip[];
}

export interface ColumnFlags {
  image?: string;
  grade?: string;
  group?: string;
  split?: string;
}

/** Header names of the common public layouts, normalized (lower case, letters and digits only), most specific first. */
const KNOWN_COLUMNS: Record<keyof Columns, string[]> = {
  image: ['idcode', 'image', 'imageid', 'imagename', 'imagepath', 'filename', 'file', 'path', 'img', 'name', 'id'],
  grade: [
    'diagnosis',
    'level',
    'retinopathygrade',
    'adjudicateddrgrade',
    'drgrade',
    'grade',
    'drlevel',
    'patientdrlevel',
    'label',
    'class',
  ],
  group: ['patientid', 'patient', 'subjectid', 'subject'],
  split: ['split', 'subset', 'set', 'partition'],
};

const normalize = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Picks each column from the flags, else by known name; a missing image or grade column is an error listing the header. */
export function detectColumns(header: readonly string[], flags: ColumnFlags, file: string): Columns {
  const pick = (role: keyof Columns, required: boolean): string | undefined => {
    const given = flags[role];
    if (given !== undefined) {
      if (!header.includes(given)) {
        throw new UserError(`${file}: no column '${given}' (--${role}-column); the header is: ${header.join(', ')}`);
      }
      return given;
    }
    for (const known of KNOWN_COLUMNS[role]) {
      const found = header.find((h) => normalize(h) === known);
      if (found !== undefined) return found;
    }
    if (required) {
      throw new UserError(
        `${file}: cannot tell which column holds the ${role} (header: ${header.join(', ')}); name it with --${role}-column`,
      );
    }
    return undefined;
  };
  const image = pick('image', true)!;
  const grade = pick('grade', true)!;
  const columns: Columns = { image, grade };
  const group = pick('group', false);
  const split = pick('split', false);
  if (group !== undefined && group !== image) columns.group = group;
  if (split !== undefined) columns.split = split;
  return columns;
}

/** A grade cell: an integer 0..NUM_GRADES-1 or a grade's name; anything else is a reason to skip. */
export function parseGrade(value: string): number | string {
  const text = value.trim();
  const byName = GRADE_NAMES.findIndex((name) => name.toLowerCase() === text.toLowerCase());
  if (byName >= 0) return byName;
  if (!/^[+-]?\d+(\.0*)?$/.test(text)) return `grade '${value}' is not a number or a grade name`;
  const grade = Number(text);
  if (grade < 0 || grade >= NUM_GRADES) return `grade ${grade} is outside 0-${NUM_GRADES - 1}`;
  return grade;
}

const SPLIT_NAMES: Record<string, Split> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  dev: 'val',
  test: 'test',
  testing: 'test',
};

/** EyePACS names an image `<patient>_left` / `<patient>_right`. */
const EYEPACS_NAME = /^(.+)_(left|right)$/i;

/** Every image file under `root`, by its '/'-separated path relative to it. */
function listImages(root: string): string[] {
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' });
  return files
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()) && statSync(join(root, f)).isFile())
    .map((f) => f.split(sep).join('/'))
    .sort();
}

function stem(path: string): string {
  const name = basename(path);
  return name.slice(0, name.length - extname(name).length);
}

/** Derives patients from EyePACS-style names when every entry has one and no group column was given. */
function deriveGroups(entries: SourceEntry[]): boolean {
  if (entries.length === 0 || !entries.every((e) => EYEPACS_NAME.test(stem(e.id)))) return false;
  for (const entry of entries) entry.group = EYEPACS_NAME.exec(stem(entry.id))![1];
  return true;
}

/** Excel workbooks (IDRiD's .xlsx, Messidor's .xls); any other labels file is read as CSV. */
const EXCEL_EXTENSIONS = new Set(['.xlsx', '.xls']);
const isExcel = (labelsFile: string): boolean => EXCEL_EXTENSIONS.has(extname(labelsFile).toLowerCase());

/** The first sheet's cells as text, row by row, as Excel displays them (a grade cell 2 reads '2'). */
function readExcelRows(labelsFile: string, bytes: Buffer): string[][] {
  // Loaded on use: SheetJS adds ~35 ms to the start of every command otherwise.
  const XLSX = createRequire(import.meta.url)('@e965/xlsx') as typeof Sheets;
  let sheet: Sheets.WorkSheet | undefined;
  try {
    const book = XLSX.read(bytes, { type: 'buffer', dense: true });
    sheet = book.Sheets[book.SheetNames[0] ?? ''];
  } catch (error) {
    throw new UserError(`${labelsFile}: not a readable Excel workbook (${(error as Error).message})`);
  }
  if (!sheet) throw new UserError(`${labelsFile}: the workbook has no sheet`);
  const rows = XLSX.utils.sheet_to_json<unknown[]>(sheet, { header: 1, raw: false, defval: '', blankrows: false });
  return rows.map((row) => row.map((cell) => String(cell).trim()));
}

/** A labels file's rows, header first: CSV (quoting, BOM, ragged rows) or an Excel workbook's first sheet. */
function readLabelRows(labelsFile: string): string[][] {
  const bytes = readRegularFileSync(labelsFile, MAX_LABELS_BYTES, `a labels file (${isExcel(labelsFile) ? 'Excel' : 'CSV'})`);
  if (isExcel(labelsFile)) return readExcelRows(labelsFile, bytes);
  try {
    return parse(bytes.toString('utf8'), { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true });
  } catch (error) {
    throw new UserError(`${labelsFile}: not a readable CSV file (${(error as Error).message})`);
  }
}

export function listFromLabels(root: string, labelsFile: string, flags: ColumnFlags): SourceListing {
  const rows = readLabelRows(labelsFile);
  const [header, ...body] = rows;
  if (!header) throw new UserError(`${labelsFile}: empty labels file`);
  const columns = detectColumns(header, flags, labelsFile);
  const at = (name: string | undefined) => (name === undefined ? -1 : header.indexOf(name));
  const [imageAt, gradeAt, groupAt, splitAt] = [at(columns.image), at(columns.grade), at(columns.group), at(columns.split)];

  // An image is found by relative path, by file name, or by file name without extension.
  const images = listImages(root);
  const byKey = new Map<string, string[]>();
  for (const image of images) {
    for (const key of new Set([image, basename(image), stem(image)])) byKey.set(key, [...(byKey.get(key) ?? []), image]);
  }
  const skipped: Skip[] = [];
  const entries: SourceEntry[] = [];
  const firstRowOf = new Map<string, number>();
  const named = new Set<string>();
  body.forEach((row, i) => {
    const line = i + 2; // 1-based, after the header
    const where = `${basename(labelsFile)} row ${line}`;
    const name = (row[imageAt] ?? '').replace(/\\/g, '/').replace(/^\.\//, '');
    const skip = (reason: string) => skipped.push({ input: name ? `${where} (${name})` : where, reason });
    if (!name) return skip(`empty ${columns.image} cell`);
    const matches = byKey.get(name) ?? [];
    if (matches.length === 0) return skip(`no image file named '${name}' under the source folder`);
    if (matches.length > 1) return skip(`'${name}' matches several files (${matches.join(', ')}): name it with its extension or path`);
    const image = matches[0]!;
    named.add(image);
    const first = firstRowOf.get(image);
    if (first !== undefined) return skip(`duplicate id: ${image} is already labelled in row ${first}`);
    firstRowOf.set(image, line);
    const grade = parseGrade(row[gradeAt] ?? '');
    if (typeof grade === 'string') return skip(grade);
    const entry: SourceEntry = { id: image, file: join(root, image), grade };
    if (groupAt >= 0) {
      const group = (row[groupAt] ?? '').trim();
      if (!group) return skip(`empty ${columns.group} cell`);
      entry.group = group;
    }
    if (splitAt >= 0) {
      const value = (row[splitAt] ?? '').trim();
      const split = SPLIT_NAMES[value.toLowerCase()];
      if (!split) return skip(`split '${value}' is not one of ${Object.keys(SPLIT_NAMES).join(', ')}`);
      entry.split = split;
    }
    entries.push(entry);
  });
  for (const image of images) {
    if (!named.has(image)) skipped.push({ input: image, reason: `no row in ${basename(labelsFile)}` });
  }
  const groups = groupAt >= 0 ? 'column' : deriveGroups(entries) ? 'eyepacs-names' : 'none';
  return { layout: isExcel(labelsFile) ? 'labels-excel' : 'labels-csv', columns, groups, entries, skipped };
}

/** Subfolders `0`..`4` or named after the grades (any case); images elsewhere are skipped. */
export function listFromGradeFolders(root: string): SourceListing {
  const gradeOf = (folder: string): number | undefined => {
    const grade = parseGrade(folder);
    return typeof grade === 'number' ? grade : undefined;
  };
  const entries: SourceEntry[] = [];
  const skipped: Skip[] = [];
  for (const image of listImages(root)) {
    const parts = image.split('/');
    const grade = parts.length === 2 ? gradeOf(parts[0]!) : undefined;
    if (grade === undefined) {
      skipped.push({ input: image, reason: `not in a grade folder (expected <grade>/<image> with grade 0-${NUM_GRADES - 1} or its name)` });
    } else {
      entries.push({ id: image, file: join(root, image), grade });
    }
  }
  if (entries.length === 0) {
    const names = GRADE_NAMES.map((n, k) => `${k} or '${n}'`).join(', ');
    throw new UserError(`${root}: no images in grade folders (expected subfolders ${names}), and no --labels file given`);
  }
  return { layout: 'grade-folders', groups: deriveGroups(entries) ? 'eyepacs-names' : 'none', entries, skipped };
}

/** The listing of `root`: from `labels` when given, else from grade folders. */
export function listSource(root: string, labels: string | undefined, flags: ColumnFlags): SourceListing {
  let isDirectory = false;
  try {
    isDirectory = statSync(root).isDirectory();
  } catch (error) {
    throw new UserError(`${root}: cannot read the source (${(error as Error).message})`);
  }
  if (!isDirectory) throw new UserError(`${root}: expected a folder of photographs or a MedMNIST .npz file`);
  return labels ? listFromLabels(root, labels, flags) : listFromGradeFolders(root);
}
