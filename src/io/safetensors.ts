// Reads and writes state dicts in the safetensors format (https://github.com/huggingface/safetensors),
// the weight format PyTorch and Hugging Face tools read:
//
//   [8 bytes: header length N, u64 little-endian][N bytes: JSON header][data section]
//
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (byte offsets
// into the data section) and may hold "__metadata__", a string -> string map (we keep the model
// config there). Data is raw little-endian, row-major.
//
// Every file we write carries CHECKSUM_KEY in its metadata: the sha256 of the rest of the
// metadata, the tensors' layout (dtype, shape, offsets) and the data section, checked when the
// file is read. Files without it (written by
// other tools, or before it existed) are read unchecked.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { readRegularFileSync } from './regular-file.js';
import { endianness } from 'node:os';
import * as torch from '../torch/index.js';
import type { DType, Tensor, TypedArray } from '../torch/index.js';

export interface SafetensorsContents {
  tensors: Map<string, Tensor>;
  /** Without CHECKSUM_KEY. */
  metadata: Record<string, string>;
  /** Whether the file carried a checksum (it matched: a mismatch is an error). */
  checksummed: boolean;
}

/** The metadata key holding the sha256 of the file's other metadata, its layout and its data section. */
export const CHECKSUM_KEY = 'sha256';

const byName = <T>([a]: [string, T], [b]: [string, T]): number => (a < b ? -1 : a > b ? 1 : 0);

/** sha256 over the metadata (without the checksum), each tensor's dtype, shape and offsets (both by name), and the data section. */
function checksum(metadata: Record<string, string>, layout: Entry[], data: Uint8Array): string {
  const entries = Object.entries(metadata)
    .filter(([key]) => key !== CHECKSUM_KEY)
    .sort(byName);
  const tensors = layout.map((e): [string, unknown[]] => [e.name, [e.dtype, e.shape, e.begin, e.end]]).sort(byName);
  return createHash('sha256')
    .update(JSON.stringify([entries, tensors]))
    .update(data)
    .digest('hex');
}

const CODES: Record<DType, string> = { float32: 'F32', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };
const DTYPES = new Map(Object.entries(CODES).map(([dtype, code]) => [code, dtype as DType]));
const ITEM_SIZE: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1 };
const METADATA_KEY = '__metadata__';

// Typed arrays use the host's byte order, and the format is little-endian.
if (endianness() !== 'LE') throw new Error('safetensors I/O needs a little-endian host');

/** Encodes tensors (and string metadata) as the bytes of a safetensors file. */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new TypeError(`safetensors metadata '${key}' must be a string, got ${typeof value}`);
  }
  if (CHECKSUM_KEY in metadata) throw new TypeError(`safetensors metadata '${CHECKSUM_KEY}' is written by encodeSafetensors itself`);
  for (const name of tensors.keys()) {
    if (name === '' || name === METADATA_KEY) throw new TypeError(`'${name}' cannot be a tensor name in safetensors`);
  }
  // The header lists tensors by name; the data section puts wider dtypes first so that every
  // tensor starts at a multiple of its element size (readers may map the file without copying).
  const names = [...tensors.keys()].sort();
  const byAlignment = [...names].sort((a, b) => ITEM_SIZE[tensors.get(b)!.dtype] - ITEM_SIZE[tensors.get(a)!.dtype]);
  const payloads = new Map<string, Uint8Array>();
  const offsets = new Map<string, [number, number]>();
  let dataLength = 0;
  for (const name of byAlignment) {
    const data = tensors.get(name)!.data();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    payloads.set(name, bytes);
    offsets.set(name, [dataLength, dataLength + bytes.byteLength]);
    dataLength += bytes.byteLength;
  }
  const data = new Uint8Array(dataLength);
  for (const [name, bytes] of payloads) data.set(bytes, offsets.get(name)![0]);
  const layout = names.map((name): Entry => {
    const [begin, end] = offsets.get(name)!;
    return { name, dtype: tensors.get(name)!.dtype, shape: tensors.get(name)!.shape, begin, end };
  });
  const header: Record<string, unknown> = { [METADATA_KEY]: { ...metadata, [CHECKSUM_KEY]: checksum(metadata, layout, data) } };
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: CODES[t.dtype], shape: t.shape, data_offsets: offsets.get(name) };
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // Spaces after the JSON pad the header so that the data section starts 8-byte aligned.
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(json, 8);
  out.set(data, 8 + headerLength);
  return out;
}

/** Decodes safetensors bytes; `source` (usually the file path) names the origin in errors. */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.byteLength < 8) fail(`not a safetensors file: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLength} runs past the end of the file (${bytes.byteLength} bytes)`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerLength)).toString('utf8'));
  } catch (error) {
    fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataLength = bytes.byteLength - dataStart;

  const { [METADATA_KEY]: rawMetadata = {}, ...entries } = header as Record<string, unknown>;
  const { [CHECKSUM_KEY]: expected, ...metadata } = parseMetadata(rawMetadata, fail);
  const layout = Object.entries(entries).map(([name, entry]) => parseEntry(name, entry, dataLength, fail));
  if (expected !== undefined && expected !== checksum(metadata, layout, bytes.subarray(dataStart))) {
    fail('its weights or metadata do not match the sha256 written with them: the file was changed or damaged after it was written');
  }
  const sorted = [...layout].sort((a, b) => a.begin - b.begin);
  sorted.forEach((entry, i) => {
    const previous = sorted[i - 1];
    if (previous !== undefined && entry.begin < previous.end) {
      fail(`tensor '${entry.name}' data_offsets overlap those of tensor '${previous.name}'`);
    }
  });

  const tensors = new Map<string, Tensor>();
  for (const { name, dtype, shape, begin, end } of layout) {
    // A copy, so the typed array is aligned and owns its memory (a Buffer's slice would be a view).
    const raw = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end)).buffer;
    tensors.set(name, torch.tensor(typedArray(dtype, raw), shape, dtype));
  }
  return { tensors, metadata, checksummed: expected !== undefined };
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, entry: unknown, dataLength: number, fail: (what: string) => never): Entry {
  const { dtype: code, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
  const dtype = DTYPES.get(code as string);
  if (dtype === undefined) {
    fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(code)} (supported: ${[...DTYPES.keys()].join(', ')})`);
  }
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) fail(`tensor '${name}' data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes)`);
  const expectedBytes = (shape as number[]).reduce((a, b) => a * b, ITEM_SIZE[dtype]);
  if (end - begin !== expectedBytes) {
    fail(`tensor '${name}' has ${end - begin} bytes of data but ${dtype} [${shape}] needs ${expectedBytes}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

function parseMetadata(raw: unknown, fail: (what: string) => never): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${METADATA_KEY} is not a JSON object`);
  for (const [key, value] of Object.entries(raw as object)) {
    if (typeof value !== 'string') fail(`${METADATA_KEY} entry '${key}' is not a string`);
  }
  return { ...(raw as Record<string, string>) };
}

function typedArray(dtype: DType, buffer: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer);
  }
}

/** The largest safetensors file read (Node's largest buffer on 64-bit hosts). */
export const MAX_SAFETENSORS_BYTES = 4 * 1024 ** 3;

/** Saves tensors to `path` atomically (see writeFileAtomic): a reader never sees a half-written file. */
export function saveSafetensors(path: string, tensors: ReadonlyMap<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Loads a safetensors file, validating its header; errors name the file and the tensor. */
export function loadSafetensors(path: string): SafetensorsContents {
  return decodeSafetensors(readRegularFileSync(path, MAX_SAFETENSORS_BYTES, 'a safetensors file'), path);
}

/** The metadata of a safetensors file, reading its header only (not the tensors). */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  const fd = openSync(path, 'r');
  try {
    const lengthBytes = Buffer.alloc(8);
    if (readSync(fd, lengthBytes, 0, 8, 0) < 8) fail('not a safetensors file: shorter than the 8-byte header length');
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > 100_000_000n) fail(`header length ${headerLength} is not plausible`);
    const header = Buffer.alloc(Number(headerLength));
    if (readSync(fd, header, 0, header.length, 8) < header.length) fail('the header runs past the end of the file');
    let parsed: unknown;
    try {
      parsed = JSON.parse(header.toString('utf8'));
    } catch (error) {
      fail(`header is not valid JSON (${(error as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('header is not a JSON object');
    return parseMetadata((parsed as Record<string, unknown>)[METADATA_KEY] ?? {}, fail);
  } finally {
    closeSync(fd);
  }
}
