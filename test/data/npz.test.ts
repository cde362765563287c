import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNpy, parseNpz, readNpz, type NpyArray } from '../../src/data/npz.js';
import { npy, npyWithHeader, npz } from './npz-writer.js';

// Written by numpy before the suite runs (test/global-setup.ts).
const FIXTURES = process.env.NPZ_FIXTURES_DIR!;
const fixture = (name: string) => readFileSync(join(FIXTURES, name));

interface Expected {
  dtype: string;
  shape: number[];
  values: (number | string)[];
}
const expected: Record<string, Expected> = JSON.parse(fixture('expected.json').toString());

/** expected.json's encoding: 64-bit integers and non-finite floats as strings. */
function decodeExpected(dtype: string, value: number | string): number | bigint {
  if (dtype === 'int64' || dtype === 'uint64') return BigInt(value);
  if (value === 'nan') return NaN;
  if (value === 'inf') return Infinity;
  if (value === '-inf') return -Infinity;
  return value as number;
}

function expectMatchesNumpy(array: NpyArray, want: Expected) {
  expect(array.dtype).toBe(want.dtype);
  expect(array.shape).toEqual(want.shape);
  expect(array.data.length).toBe(want.values.length);
  want.values.forEach((value, i) => {
    // Object.is tells -0 from 0 and NaN from everything else, so values must match bit for bit.
    expect(Object.is(array.data[i], decodeExpected(want.dtype, value)), `element ${i}`).toBe(true);
  });
}

describe('npz reader against numpy-written fixtures', () => {
  for (const file of ['values_stored.npz', 'values_deflated.npz']) {
    it(`reads every dtype exactly from ${file}`, () => {
      const arrays = readNpz(join(FIXTURES, file));
      expect([...arrays.keys()].sort()).toEqual(Object.keys(expected).sort());
      for (const [key, want] of Object.entries(expected)) expectMatchesNumpy(arrays.get(key)!, want);
    });
  }

  it('reads an archive with zip64 records', () => {
    const bytes = fixture('zip64.npz');
    expect(bytes.includes(Buffer.from('PK\x06\x06', 'latin1'))).toBe(true); // the zip64 end of central directory
    expectMatchesNumpy(parseNpz(bytes, 'zip64.npz').get('grid')!, expected.grid!);
  });

  it('reads format version 2.0 and 3.0 headers', () => {
    for (const file of ['v2_header.npy', 'v3_header.npy']) {
      const bytes = fixture(file);
      expect(bytes[6], file).toBe(Number(file[1]));
      expectMatchesNumpy(parseNpy(bytes, file), expected.grid!);
    }
  });

  it('copies data that is not aligned for its dtype instead of misreading it', () => {
    const bytes = fixture('v2_header.npy');
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expectMatchesNumpy(parseNpy(shifted.subarray(1), 'shifted'), expected.grid!);
  });
});

describe('npz reader refusals name the file, key and what was expected', () => {
  it('refuses Fortran order', () => {
    const archive = npz({ grid: fixture('fortran_order.npy') });
    expect(() => parseNpz(archive, 'f.npz')).toThrow(/^f\.npz, key 'grid': Fortran-order array is not supported \(expected C order/);
  });

  it('refuses big-endian data', () => {
    expect(() => parseNpy(fixture('big_endian.npy'), 'big_endian.npy')).toThrow(
      /^big_endian\.npy: big-endian dtype '>i4' is not supported \(expected little-endian/,
    );
  });

  it('refuses unsupported dtypes', () => {
    expect(() => parseNpy(fixture('complex.npy'), 'complex.npy')).toThrow(
      /^complex\.npy: unsupported dtype '<c8' \(expected one of bool, uint8/,
    );
    const structured = npyWithHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4));
    expect(() => parseNpy(structured, 's.npy')).toThrow(`s.npy: unsupported dtype [["a","<f4"]]`);
  });

  it('refuses data whose length does not match the shape', () => {
    const bytes = fixture('v2_header.npy');
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 2), 'short.npy')).toThrow(
      'short.npy: data length does not match shape (2, 3, 4) of int16: expected 48 bytes, found 46',
    );
  });

  it('refuses a truncated zip', () => {
    const bytes = fixture('values_stored.npz');
    expect(() => parseNpz(bytes.subarray(0, bytes.length >> 1), 'half.npz')).toThrow(
      /^half\.npz: truncated or corrupt zip archive \(.*\); expected a complete \.npz file/,
    );
  });

  it('checks each member against its stored CRC-32: a flipped label byte in a stored archive is refused', () => {
    const labels = Uint8Array.from([0, 1, 2, 3, 4, 0, 1, 2]);
    const archive = npz({ train_labels: npy('|u1', [8, 1], labels) });
    expect([...(parseNpz(archive, 'labels.npz').get('train_labels')!.data as Uint8Array)]).toEqual([...labels]);
    const flipped = archive.slice();
    const at = Buffer.from(archive).indexOf(Buffer.from(labels));
    flipped[at + 3] = 1; // grade 3 becomes 1: a valid label, so only the CRC tells
    expect(() => parseNpz(flipped, 'labels.npz')).toThrow(
      /^labels\.npz, entry 'train_labels\.npy': CRC-32 mismatch \(stored [0-9a-f]{8}, data [0-9a-f]{8}\): the archive is damaged/,
    );
    // numpy's own files (stored, deflated and zip64) carry correct ones.
    for (const file of ['values_stored.npz', 'values_deflated.npz']) expect(parseNpz(fixture(file), file).size).toBeGreaterThan(0);
  });

  it('refuses corrupt deflated data, naming the entry', () => {
    const archive = npz({ a: npy('<f8', [64], new Uint8Array(8 * 64)) }, true);
    const view = new DataView(archive.buffer);
    // The first local header's entry data starts after its 30 fixed bytes, name and extra field.
    const dataStart = 30 + view.getUint16(26, true) + view.getUint16(28, true);
    const corrupt = archive.slice();
    corrupt[dataStart] = 0xff; // a deflate block of the reserved type 3
    expect(parseNpz(archive, 'good.npz').get('a')!.data.length).toBe(64);
    expect(() => parseNpz(corrupt, 'bad.npz')).toThrow(/^bad\.npz, entry 'a\.npy': truncated or corrupt zip archive/);
  });

  it('refuses entries that are not .npy data and malformed headers', () => {
    expect(() => parseNpz(npz({ junk: new TextEncoder().encode('hello world') }), 'j.npz')).toThrow(
      "j.npz, key 'junk': not a .npy array (missing the \\x93NUMPY magic)",
    );
    const badHeader = npy('<f4', [1], new Uint8Array(4));
    badHeader.set(new TextEncoder().encode("{'descr' '<f4'"), 10);
    expect(() => parseNpy(badHeader, 'h.npy')).toThrow(/^h\.npy: malformed \.npy header .*expected ':'/);
    const version9 = npy('<f4', [1], new Uint8Array(4));
    version9[6] = 9;
    expect(() => parseNpy(version9, 'v9.npy')).toThrow('v9.npy: unsupported .npy format version 9.0 (expected 1.0, 2.0 or 3.0)');
  });
});
