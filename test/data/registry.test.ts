import { describe, expect, it } from 'vitest';
import { IMAGE_SIZES, datasetKeys, getDataset, getDatasetFile } from '../../src/data/registry.js';

describe('MedMNIST registry', () => {
  it('describes RetinaMNIST as the data README does', () => {
    const retina = getDataset('retinamnist');
    expect(retina.task).toBe('ordinal-regression');
    expect(retina.labels).toEqual(['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR']);
    expect(retina.splitSizes).toEqual({ train: 1080, val: 120, test: 400 });
    expect(retina.channels).toBe(3);
    expect(retina.licence).toBe('CC BY 4.0');
    expect(retina.citations.join('\n')).toMatch(/MedMNIST v2.*Scientific Data 10, 41 \(2023\)/);
    expect(retina.citations.join('\n')).toMatch(/DeepDRiD.*Patterns 3\(6\), 100512 \(2022\)/);
  });

  it('names, locates and checksums each size', () => {
    expect(getDatasetFile('retinamnist', 28)).toEqual({
      size: 28,
      fileName: 'retinamnist.npz',
      url: 'https://zenodo.org/records/10519652/files/retinamnist.npz?download=1',
      md5: 'bd4c0672f1bba3e3a89f0e4e876791e4',
    });
    expect(getDatasetFile('retinamnist', 64).fileName).toBe('retinamnist_64.npz');
    expect(getDatasetFile('retinamnist', 64).md5).toBe('afda852cc34dcda56f86ad2b2457dbcc');
    expect(getDatasetFile('retinamnist', 128).url).toBe('https://zenodo.org/records/10519652/files/retinamnist_128.npz?download=1');
    expect(getDatasetFile('retinamnist', 128).md5).toBe('e48e916a24454daf90583d4e6efb1a18');
    expect(getDatasetFile('retinamnist', 224).md5).toBe('eae7e3b6f3fcbda4ae613ebdcbe35348');
  });

  it('keeps every entry consistent', () => {
    const keys = datasetKeys();
    expect(new Set(keys).size).toBe(keys.length);
    const md5s = keys.flatMap((key) => IMAGE_SIZES.map((size) => getDataset(key).files[size].md5).filter((md5) => md5 !== undefined));
    expect(new Set(md5s).size).toBe(md5s.length);
    for (const key of keys) {
      const info = getDataset(key);
      expect(info.labels.length, key).toBeGreaterThanOrEqual(2);
      if (info.task === 'binary-class') expect(info.labels.length, key).toBe(2);
      for (const size of IMAGE_SIZES) {
        expect(info.files[size].size).toBe(size);
        expect(info.files[size].url).toContain(`/${info.files[size].fileName}?`);
        if (info.files[size].md5 !== undefined) expect(info.files[size].md5).toMatch(/^[0-9a-f]{32}$/);
      }
    }
    expect(getDataset('pneumoniamnist').channels).toBe(1);
  });

  it('refuses unknown datasets and sizes', () => {
    expect(() => getDataset('retina')).toThrow(
      "unknown dataset 'retina' (expected one of: retinamnist, pneumoniamnist, dermamnist, pathmnist, " +
        'octmnist, breastmnist, bloodmnist, tissuemnist)',
    );
    expect(() => getDatasetFile('retinamnist', 32)).toThrow(
      'unsupported image size 32 for retinamnist (expected one of: 28, 64, 128, 224)',
    );
  });
});
