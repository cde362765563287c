// Reader for NumPy's .npy arrays and .npz archives (a zip of .npy files), the format MedMNIST ships.
// Supports what numpy writes for plain numeric arrays: format versions 1-3, little-endian
// bool/int/uint/float dtypes, C order. Anything else is refused with an error naming the file
// and key, rather than read wrongly.
import { crc32 } from 'node:zlib';
import { unzipSync } from 'fflate';
import { UserError } from '../errors.js';
import { readRegularFileSync } from '../io/regular-file.js';

export type NpyDtype = 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64' | 'float32' | 'float64';

export type NpyData =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Elements in C (row-major) order; bool is stored as 0/1 bytes. */
  data: NpyData;
}

interface DtypeSpec {
  dtype: NpyDtype;
  bytes: number;
  view: (buffer: ArrayBufferLike, byteOffset: number, length: number) => NpyData;
}

// Keyed by numpy's type-kind letter and item size, e.g. 'f4' from the descr '<f4'.
const DTYPES: Record<string, DtypeSpec> = {
  b1: { dtype: 'bool', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
  u1: { dtype: 'uint8', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
  u2: { dtype: 'uint16', bytes: 2, view: (b, o, n) => new Uint16Array(b, o, n) },
  u4: { dtype: 'uint32', bytes: 4, view: (b, o, n) => new Uint32Array(b, o, n) },
  u8: { dtype: 'uint64', bytes: 8, view: (b, o, n) => new BigUint64Array(b, o, n) },
  i1: { dtype: 'int8', bytes: 1, view: (b, o, n) => new Int8Array(b, o, n) },
  i2: { dtype: 'int16', bytes: 2, view: (b, o, n) => new Int16Array(b, o, n) },
  i4: { dtype: 'int32', bytes: 4, view: (b, o, n) => new Int32Array(b, o, n) },
  i8: { dtype: 'int64', bytes: 8, view: (b, o, n) => new BigInt64Array(b, o, n) },
  f4: { dtype: 'float32', bytes: 4, view: (b, o, n) => new Float32Array(b, o, n) },
  f8: { dtype: 'float64', bytes: 8, view: (b, o, n) => new Float64Array(b, o, n) },
};

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Parses one .npy file. `where` names it in errors, e.g. "data.npz, key 'train_images'".
 * The returned data may share memory with `bytes` (no copy when it is suitably aligned).
 */
export function parseNpy(bytes: Uint8Array, where: string): NpyArray {
  const fail = (what: string) => new UserError(`${where}: ${what}`);
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw fail('not a .npy array (missing the \\x93NUMPY magic)');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3) {
    throw fail(`unsupported .npy format version ${major}.${minor} (expected 1.0, 2.0 or 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Version 1 has a 2-byte header length; versions 2 and 3 a 4-byte one.
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw fail('truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (dataOffset > bytes.length) throw fail(`truncated .npy header (expected ${headerLength} header bytes)`);
  // Version 3 allows UTF-8 in the header (structured field names); 1 and 2 are latin-1.
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lengthBytes, dataOffset));

  let header: PyValue;
  try {
    header = parsePythonLiteral(headerText);
  } catch (error) {
    throw fail(`malformed .npy header ${JSON.stringify(headerText.trim())}: ${(error as Error).message}`);
  }
  if (!(header instanceof Map)) throw fail('malformed .npy header (expected a dict)');
  const descr = header.get('descr');
  const fortranOrder = header.get('fortran_order');
  const shape = header.get('shape');
  if (typeof descr !== 'string') {
    throw fail(`unsupported dtype ${JSON.stringify(descr)} (expected a simple numeric dtype such as '<f4')`);
  }
  if (typeof fortranOrder !== 'boolean') {
    throw fail("malformed .npy header (expected 'fortran_order': True or False)");
  }
  if (!isShape(shape)) {
    const got = JSON.stringify(shape);
    throw fail(`malformed .npy header (expected 'shape' as a tuple of non-negative integers, got ${got})`);
  }

  const spec = dtypeFromDescr(descr, fail);
  // A 1-D array has the same layout in both orders.
  if (fortranOrder && shape.length > 1) {
    throw fail('Fortran-order array is not supported (expected C order; save it with np.ascontiguousarray)');
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const expectedBytes = count * spec.bytes;
  const actualBytes = bytes.length - dataOffset;
  if (actualBytes !== expectedBytes) {
    throw fail(
      `data length does not match shape ${formatShape(shape)} of ${spec.dtype}: ` + `expected ${expectedBytes} bytes, found ${actualBytes}`,
    );
  }
  // Typed views need a byte offset that is a multiple of the item size; copy only when it is not.
  const start = bytes.byteOffset + dataOffset;
  const data = start % spec.bytes === 0 ? spec.view(bytes.buffer, start, count) : spec.view(bytes.slice(dataOffset).buffer, 0, count);
  return { dtype: spec.dtype, shape: shape, data };
}

/** Python's tuple notation, as numpy prints shapes: (3,), (2, 3). */
export function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function isShape(value: PyValue | undefined): value is number[] {
  return Array.isArray(value) && value.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0);
}

function dtypeFromDescr(descr: string, fail: (what: string) => UserError): DtypeSpec {
  const match = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  const spec = match ? DTYPES[`${match[2]}${match[3]}`] : undefined;
  if (!match || !spec) {
    throw fail(`unsupported dtype '${descr}' (expected one of bool, uint8/16/32/64, int8/16/32/64, float32, float64)`);
  }
  if (match[1] === '>' && spec.bytes > 1) {
    const littleEndian = `<${match[2]}${match[3]}`;
    throw fail(`big-endian dtype '${descr}' is not supported ` + `(expected little-endian; convert with arr.astype('${littleEndian}'))`);
  }
  return spec;
}

/** Parses the bytes of a .npz archive (stored or deflated, zip64 included). `file` names it in errors. */
export function parseNpz(bytes: Uint8Array, file: string): Map<string, NpyArray> {
  let entries: Record<string, Uint8Array>;
  // fflate inflates entry by entry; remembering the last one the filter saw names the entry that failed.
  let current: string | undefined;
  try {
    entries = unzipSync(bytes, {
      // np.load also exposes non-.npy members as raw bytes; only arrays matter here.
      filter: (entry) => {
        current = entry.name;
        return entry.name.endsWith('.npy');
      },
    });
  } catch (error) {
    const at = current === undefined ? '' : `, entry '${current}'`;
    throw new UserError(
      `${file}${at}: truncated or corrupt zip archive (${(error as Error).message}); expected a complete .npz file: download it again`,
    );
  }
  // fflate does not check the CRC-32 the archive stores for each member: a damaged stored
  // (uncompressed) member would otherwise load as other numbers.
  const crcs = storedCrcs(bytes, file);
  for (const [name, data] of Object.entries(entries)) {
    const stored = crcs.get(name);
    const actual = crc32(data);
    if (stored === undefined || stored !== actual) {
      const hex = (n: number) => n.toString(16).padStart(8, '0');
      const expected = stored === undefined ? 'none' : hex(stored);
      throw new UserError(
        `${file}, entry '${name}': CRC-32 mismatch (stored ${expected}, data ${hex(actual)}): ` +
          'the archive is damaged; download or write it again',
      );
    }
  }
  const arrays = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(entries)) {
    const key = name.slice(0, -'.npy'.length);
    arrays.set(key, parseNpy(data, `${file}, key '${key}'`));
  }
  return arrays;
}

/** The largest .npz file read (Node's largest buffer on 64-bit hosts). */
export const MAX_NPZ_BYTES = 4 * 1024 ** 3;

/**
 * Each member's CRC-32 from the zip's central directory (APPNOTE.txt 4.3.12), zip64 included.
 * unzipSync has already walked the same directory, so its structure is sound here.
 */
function storedCrcs(bytes: Uint8Array, file: string): Map<string, number> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new UserError(`${file}: no zip end-of-central-directory record`);
  let offset = view.getUint32(end + 16, true);
  // Zip64: the locator just before the record points at the zip64 record holding the offset.
  if (offset === 0xffffffff && end >= 20 && view.getUint32(end - 20, true) === 0x07064b50) {
    offset = Number(view.getBigUint64(Number(view.getBigUint64(end - 12, true)) + 48, true));
  }
  const crcs = new Map<string, number>();
  const decoder = new TextDecoder();
  while (offset + 46 <= bytes.length && view.getUint32(offset, true) === 0x02014b50) {
    const nameLength = view.getUint16(offset + 28, true);
    const name = decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    crcs.set(name, view.getUint32(offset + 16, true));
    offset += 46 + nameLength + view.getUint16(offset + 30, true) + view.getUint16(offset + 32, true);
  }
  return crcs;
}

export function readNpz(file: string): Map<string, NpyArray> {
  return parseNpz(readRegularFileSync(file, MAX_NPZ_BYTES, 'a .npz archive'), file);
}

// --- The Python literal subset numpy writes in .npy headers:
// dicts, tuples, lists, strings, integers, True/False/None.

type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

function parsePythonLiteral(text: string): PyValue {
  let pos = 0;
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (text[pos] !== char) throw new Error(`expected '${char}' at offset ${pos}`);
    pos++;
  };
  // Items up to `close`, allowing Python's trailing comma.
  const sequence = <T>(close: string, item: () => T): T[] => {
    const items: T[] = [];
    for (;;) {
      skipSpace();
      if (text[pos] === close) break;
      items.push(item());
      skipSpace();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== close) throw new Error(`expected ',' or '${close}' at offset ${pos}`);
    }
    pos++;
    return items;
  };
  const value = (): PyValue => {
    skipSpace();
    const char = text[pos];
    if (char === '{') {
      pos++;
      const map = new Map<string, PyValue>();
      sequence('}', () => {
        const key = value();
        if (typeof key !== 'string') throw new Error(`dict keys must be strings (offset ${pos})`);
        expect(':');
        map.set(key, value());
      });
      return map;
    }
    if (char === '(' || char === '[') {
      pos++;
      return sequence(char === '(' ? ')' : ']', value);
    }
    if (char === "'" || char === '"') {
      const end = text.indexOf(char, pos + 1);
      if (end < 0) throw new Error(`unterminated string at offset ${pos}`);
      const str = text.slice(pos + 1, end);
      pos = end + 1;
      return str;
    }
    const word = /^(-?\d+)L?|^(True|False|None)/.exec(text.slice(pos));
    if (!word) throw new Error(`unexpected ${char === undefined ? 'end' : `'${char}'`} at offset ${pos}`);
    pos += word[0].length;
    if (word[1] !== undefined) return Number(word[1]);
    return word[2] === 'None' ? null : word[2] === 'True';
  };
  const result = value();
  skipSpace();
  if (pos !== text.length) throw new Error(`unexpected text after the value at offset ${pos}`);
  return result;
}
