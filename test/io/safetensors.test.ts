import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';

const fixtures = fileURLToPath(new URL('../fixtures/io/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One tensor of every supported dtype, plus a scalar, an empty and a non-contiguous tensor. */
function sampleTensors(): Map<string, Tensor> {
  return new Map([
    ['conv.weight', torch.tensor([0.5, -1.25, 3, 1e-30, -7.75, 1024], [2, 3])],
    ['conv.bias', torch.tensor([1 / 3, -2.5e300, 5e-324], [3], 'float64')],
    ['step', torch.tensor(BigInt64Array.from([0n, -1n, 2n ** 40n, -(2n ** 62n)]), [2, 2])],
    ['count', torch.tensor(Int32Array.from([-(2 ** 31), 0, 2 ** 31 - 1]))],
    ['pixels', torch.tensor(Uint8Array.from([0, 7, 128, 255]), [1, 4])],
    ['mask', torch.tensor(Uint8Array.from([1, 0, 1]), [3], 'bool')],
    ['scalar', torch.tensor([2.5], [])],
    ['empty', torch.zeros([0, 3])],
    ['transposed', torch.tensor([1, 2, 3, 4, 5, 6], [2, 3]).transpose(0, 1)],
  ]);
}

function expectSameTensors(actual: Map<string, Tensor>, expected: Map<string, Tensor>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, t] of expected) {
    const got = actual.get(name)!;
    expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({ name, dtype: t.dtype, shape: t.shape });
    expect(got.data()).toEqual(t.data());
  }
}

/** Splits encoded bytes into the header length, the parsed header and the data section. */
function parts(bytes: Uint8Array): {
  headerLength: number;
  headerText: string;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  data: Uint8Array;
} {
  const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const headerText = Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8');
  return { headerLength, headerText, header: JSON.parse(headerText), data: bytes.subarray(8 + headerLength) };
}

/** A file made by hand: a header object (or raw text) followed by `dataLength` zero bytes. */
function handMade(header: object | string, dataLength = 0): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataLength);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

describe('safetensors round trip', () => {
  it('saves and loads every supported dtype exactly, with metadata', () =>
    torch.tidy(() => {
      const tensors = sampleTensors();
      const metadata = { format: 'pt', config: JSON.stringify({ model: 'resnet18', width: 64 }) };
      const path = join(dir, 'roundtrip.safetensors');
      saveSafetensors(path, tensors, metadata);
      const loaded = loadSafetensors(path);
      expect(loaded.metadata).toEqual(metadata);
      expect(loaded.checksummed).toBe(true);
      expectSameTensors(loaded.tensors, tensors);
    }));

  it('writes the layout of the spec: padded header in name order, aligned contiguous data', () =>
    torch.tidy(() => {
      const tensors = sampleTensors();
      const bytes = encodeSafetensors(tensors, { note: 'x' });
      const { headerLength, headerText, header, data } = parts(bytes);
      expect(headerLength % 8).toBe(0);
      expect(headerText).toMatch(/^\{.*\} *$/);
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      expect(names).toEqual([...tensors.keys()].sort());
      expect(header.__metadata__).toEqual({ note: 'x', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(header['conv.bias']).toEqual({ dtype: 'F64', shape: [3], data_offsets: expect.any(Array) });
      const spans = names.map((n) => header[n].data_offsets as [number, number]).sort((a, b) => a[0] - b[0]);
      spans.forEach(([begin], i) => expect(begin).toBe(i === 0 ? 0 : spans[i - 1]![1]));
      expect(spans.at(-1)![1]).toBe(data.byteLength);
      for (const name of names) {
        const itemSize = { F64: 8, I64: 8, F32: 4, I32: 4, U8: 1, BOOL: 1 }[header[name].dtype as string]!;
        expect(header[name].data_offsets[0] % itemSize).toBe(0);
      }
      // Without metadata of its own, a file still carries its checksum.
      expect(Object.keys(parts(encodeSafetensors(new Map([['a', torch.ones([1])]]))).header.__metadata__)).toEqual(['sha256']);
    }));

  it('replaces an existing file atomically and leaves no temporary files', () =>
    torch.tidy(() => {
      const sub = mkdtempSync(join(dir, 'atomic-'));
      const path = join(sub, 'model.safetensors');
      saveSafetensors(path, new Map([['w', torch.ones([2])]]));
      saveSafetensors(path, new Map([['w', torch.zeros([3])]]));
      expect(loadSafetensors(path).tensors.get('w')!.toArray()).toEqual([0, 0, 0]);
      // A save that fails keeps the previous file.
      expect(() => saveSafetensors(path, new Map([['__metadata__', torch.ones([1])]]))).toThrow(/cannot be a tensor name/);
      expect(loadSafetensors(path).tensors.get('w')!.shape).toEqual([3]);
      expect(readdirSync(sub)).toEqual(['model.safetensors']);
      expect(() => saveSafetensors(join(sub, 'missing-dir', 'x.safetensors'), new Map())).toThrow(/ENOENT/);
      expect(readdirSync(sub)).toEqual(['model.safetensors']);
    }));
});

describe('safetensors from and to Python', () => {
  it('loads a file written by hand in Python with exact values', () =>
    torch.tidy(() => {
      const { tensors, metadata, checksummed } = loadSafetensors(join(fixtures, 'from_python.st'));
      expect(metadata).toEqual({ format: 'pt', config: '{"model": "tiny", "width": 32}' });
      expect(checksummed).toBe(false); // read unchecked, as every file without a checksum
      const summary = Object.fromEntries([...tensors].map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, values: t.toArray() }]));
      expect(summary).toEqual({
        scale: { dtype: 'float64', shape: [3], values: [1 / 3, -2.5e300, 5e-324] },
        weights: { dtype: 'float32', shape: [2, 3], values: [0.5, -1.25, 3, Infinity, -Infinity, NaN] },
        index: { dtype: 'int64', shape: [2, 2], values: [0, -1, 2 ** 40, -(2 ** 50)] },
        count: { dtype: 'int32', shape: [3], values: [-(2 ** 31), 0, 2 ** 31 - 1] },
        pixels: { dtype: 'uint8', shape: [2, 2], values: [0, 7, 128, 255] },
        mask: { dtype: 'bool', shape: [3], values: [1, 0, 1] },
        scalar: { dtype: 'float32', shape: [], values: [2.5] },
        empty: { dtype: 'float32', shape: [0, 3], values: [] },
      });
    }));

  it('a file we write is read by an independent Python parser into torch tensors', ({ skip }) => {
    const python = '/usr/bin/python3'; // Debian's python with torch, not a pyenv one on PATH
    if (!existsSync(python)) skip(`${python} not found`);
    torch.tidy(() => {
      const tensors = sampleTensors();
      const path = join(dir, 'for-python.safetensors');
      saveSafetensors(path, tensors, { config: '{"depth": 18}' });
      const run = spawnSync(python, [join(fixtures, 'read_safetensors.py'), path], { encoding: 'utf8' });
      const missingModule = /No module named '(torch|numpy)'/.exec(run.stderr);
      if (missingModule) skip(`${python} cannot import ${missingModule[1]}`);
      expect(run.stderr).toBe('');
      const parsed = JSON.parse(run.stdout) as {
        metadata: Record<string, string>;
        tensors: Record<string, { dtype: string; shape: number[]; torch_dtype: string; values: (number | boolean)[] }>;
      };
      expect(parsed.metadata).toEqual({ config: '{"depth": 18}', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      const torchDtype = {
        float32: 'torch.float32',
        float64: 'torch.float64',
        int64: 'torch.int64',
        int32: 'torch.int32',
        uint8: 'torch.uint8',
        bool: 'torch.bool',
      };
      for (const [name, t] of tensors) {
        const got = parsed.tensors[name]!;
        expect({ name, shape: got.shape, torch_dtype: got.torch_dtype }).toEqual({
          name,
          shape: t.shape,
          torch_dtype: torchDtype[t.dtype],
        });
        expect(got.values.map(Number)).toEqual(t.toArray());
      }
    });
  });
});

describe('safetensors validation', () => {
  const f32 = (offsets: [number, number], shape = [1]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', Uint8Array.from([1, 2, 3]), /3 bytes, shorter than the 8-byte header length/],
    [
      'a header length beyond the file',
      (() => {
        const bytes = handMade({});
        bytes.writeBigUInt64LE(1000n, 0);
        return bytes;
      })(),
      /header length 1000 runs past the end of the file \(10 bytes\)/,
    ],
    ['a header that is not JSON', handMade('{"a": '), /header is not valid JSON/],
    ['a header that is not an object', handMade('[1, 2]'), /header is not a JSON object/],
    [
      'offsets beyond the data',
      handMade({ w: f32([0, 8], [2]) }, 4),
      /tensor 'w' data_offsets \[0, 8\] run past the data section \(4 bytes\)/,
    ],
    ['offsets in the wrong order', handMade({ w: f32([4, 0]) }, 4), /tensor 'w' has invalid data_offsets \[4,0\]/],
    ['overlapping tensors', handMade({ a: f32([0, 8], [2]), b: f32([4, 8]) }, 8), /tensor 'b' data_offsets overlap those of tensor 'a'/],
    [
      'a size that does not fit the shape',
      handMade({ w: f32([0, 8], [3]) }, 8),
      /tensor 'w' has 8 bytes of data but float32 \[3\] needs 12/,
    ],
    [
      'an unsupported dtype',
      handMade({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4),
      /tensor 'h' has unsupported dtype "F16"/,
    ],
    ['a negative dimension', handMade({ w: f32([0, 4], [-1]) }, 4), /tensor 'w' has an invalid shape \[-1\]/],
    ['non-string metadata', handMade({ __metadata__: { epoch: 3 } }), /__metadata__ entry 'epoch' is not a string/],
  ];
  it.each(cases)('rejects %s, naming the file', (_what, bytes, message) => {
    const path = join(dir, 'broken.safetensors');
    writeFileSync(path, bytes);
    expect(() => loadSafetensors(path)).toThrow(message);
    expect(() => loadSafetensors(path)).toThrow(path);
  });

  it('refuses a file whose weights or metadata changed after it was written', () =>
    torch.tidy(() => {
      const bytes = Buffer.from(encodeSafetensors(sampleTensors(), { model: '{"inputSize":28}' }));
      const flipped = Buffer.from(bytes);
      flipped[flipped.length - 20]! ^= 0x01;
      const message = /^edited: its weights or metadata do not match the sha256 written with them/;
      expect(() => decodeSafetensors(flipped, 'edited')).toThrow(message);
      // The same length, so the header still parses: only the checksum notices.
      const edited = Buffer.from(bytes.toString('latin1').replace('inputSize\\":28', 'inputSize\\":96'), 'latin1');
      expect(edited.length).toBe(bytes.length);
      expect(edited.equals(bytes)).toBe(false);
      expect(() => decodeSafetensors(edited, 'edited')).toThrow(message);
      expect(decodeSafetensors(bytes, 'intact').checksummed).toBe(true);
    }));

  it('decodes from memory with the given source name', () => {
    const bytes = readFileSync(join(fixtures, 'from_python.st'));
    expect(decodeSafetensors(bytes, 'memory').tensors.size).toBe(8);
    expect(() => decodeSafetensors(bytes.subarray(0, 20), 'checkpoint.bin')).toThrow(/^checkpoint\.bin: header length/);
  });
});
