// The .npy format (numpy's one-array file) for uint8 arrays: a fixed-size header that can be
// rewritten in place as rows are appended, and row reads at offsets into a reused buffer, so an
// array far larger than memory is written and read a batch at a time.
// Format: the magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a Python
// dict literal padded with spaces and ending in '\n', the whole preamble a multiple of 64 bytes.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
/** Room for any shape this project writes (a row count up to 2^53), so the header never grows. */
export const NPY_HEADER_BYTES = 128;

/** The 128-byte preamble of a C-ordered uint8 array of `shape`. */
export function npyHeader(shape: readonly number[]): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '|u1', 'fortran_order': False, 'shape': (${dims}), }`;
  const headerLength = NPY_HEADER_BYTES - 10;
  if (dict.length + 1 > headerLength) throw new RangeError(`npyHeader: shape [${shape.join(', ')}] does not fit the header`);
  const out = Buffer.alloc(NPY_HEADER_BYTES, 0x20);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(headerLength, 8);
  out.write(dict, 10, 'latin1');
  out[NPY_HEADER_BYTES - 1] = 0x0a;
  return out;
}

export interface NpyHeader {
  shape: number[];
  /** Where the data starts. */
  offset: number;
}

/** Parses the preamble of a uint8, C-ordered .npy file (versions 1-3); anything else is refused naming the file. */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 10 || !buffer.subarray(0, 6).equals(MAGIC)) throw new UserError(`${file}: not a .npy file (bad magic)`);
  const major = buffer[6]!;
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const offset = 8 + lengthBytes + headerLength;
  if (buffer.length < offset) throw new UserError(`${file}: truncated .npy header`);
  const dict = buffer.toString('latin1', 8 + lengthBytes, offset);
  const descr = /'descr':\s*'([^']*)'/.exec(dict)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (descr !== '|u1' || fortran !== 'False' || shape === undefined) {
    throw new UserError(`${file}: expected a C-ordered uint8 array ('|u1'), got header ${dict.trim()}`);
  }
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${file}: bad shape (${shape}) in the .npy header`);
  return { shape: dims, offset };
}

/**
 * Reads rows (the first axis) of a uint8 .npy file with positioned reads into one buffer that is
 * reused from call to call: memory stays one batch whatever the file's size.
 */
export class NpyRowReader {
  readonly shape: number[];
  readonly rows: number;
  readonly rowBytes: number;
  private readonly fd: number;
  private readonly offset: number;
  private buffer = Buffer.alloc(0);

  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    try {
      const preamble = Buffer.alloc(4096);
      const got = readSync(this.fd, preamble, 0, preamble.length, 0);
      const header = parseNpyHeader(preamble.subarray(0, got), file);
      this.shape = header.shape;
      this.offset = header.offset;
      this.rows = header.shape[0] ?? 0;
      this.rowBytes = header.shape.slice(1).reduce((a, b) => a * b, 1);
      const expected = this.offset + this.rows * this.rowBytes;
      const actual = fstatSync(this.fd).size;
      if (actual !== expected) {
        throw new UserError(`${file}: ${actual} bytes, expected ${expected} for shape (${this.shape.join(', ')}) (truncated or corrupt)`);
      }
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  /** Rows `indices` back to back; the view is valid until the next call. */
  read(indices: ArrayLike<number>): Uint8Array {
    const bytes = indices.length * this.rowBytes;
    if (this.buffer.length < bytes) this.buffer = Buffer.alloc(bytes);
    for (let k = 0; k < indices.length; k++) {
      const row = indices[k]!;
      if (!Number.isInteger(row) || row < 0 || row >= this.rows)
        throw new RangeError(`${this.file}: row ${row} out of 0..${this.rows - 1}`);
      const target = k * this.rowBytes;
      for (let done = 0; done < this.rowBytes; ) {
        const got = readSync(this.fd, this.buffer, target + done, this.rowBytes - done, this.offset + row * this.rowBytes + done);
        if (got === 0) throw new UserError(`${this.file}: unexpected end of file at row ${row}`);
        done += got;
      }
    }
    return new Uint8Array(this.buffer.buffer, this.buffer.byteOffset, bytes);
  }

  close(): void {
    closeSync(this.fd);
  }
}
