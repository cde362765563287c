// Test helper: writes .npy/.npz bytes the way numpy does (version 1.0 header, padded to 64 bytes),
// for synthetic MedMNIST files too big to commit as fixtures.
import { zipSync } from 'fflate';

export function npy(descr: string, shape: readonly number[], data: Uint8Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return npyWithHeader(`{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`, data);
}

/** `dict` is the header's Python literal, written as given. */
export function npyWithHeader(dict: string, data: Uint8Array): Uint8Array {
  const header = `${dict.padEnd(Math.ceil((10 + dict.length + 1) / 64) * 64 - 10 - 1)}\n`;
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

/** An .npz of the given .npy bytes; `deflate` picks np.savez_compressed over np.savez. */
export function npz(arrays: Record<string, Uint8Array>, deflate = false): Uint8Array {
  const entries = Object.fromEntries(Object.entries(arrays).map(([key, bytes]) => [`${key}.npy`, bytes]));
  return zipSync(entries, { level: deflate ? 6 : 0 });
}

export interface FakeSplit {
  images: Uint8Array;
  labels: Uint8Array;
}

/** A MedMNIST-layout .npz: images (N, S, S, C) or (N, S, S) when channels is 1, labels (N, 1) uint8. */
export function fakeMedMNIST(
  size: number,
  channels: 1 | 3,
  splits: Record<'train' | 'val' | 'test', FakeSplit>,
  deflate = false,
): Uint8Array {
  const arrays: Record<string, Uint8Array> = {};
  for (const [split, { images, labels }] of Object.entries(splits)) {
    const n = labels.length;
    arrays[`${split}_images`] = npy('|u1', channels === 3 ? [n, size, size, 3] : [n, size, size], images);
    arrays[`${split}_labels`] = npy('|u1', [n, 1], labels);
  }
  return npz(arrays, deflate);
}
