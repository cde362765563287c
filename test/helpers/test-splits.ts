// The official test split at each input size a test file asks for, loaded once per size and
// freed after the file's tests.
import { afterAll } from 'vitest';
import { loadRetinaTensors, type RetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData } from '../../src/data/training-data.js';

/** A loader of the test split by size; call at the top level of a test file. */
export function testSplits(dataDir: string): (size: number) => RetinaTensors['test'] {
  const splits = new Map<number, RetinaTensors>();
  afterAll(() => {
    for (const data of splits.values()) releaseTrainingData(data);
  });
  return (size) => {
    if (!splits.has(size)) splits.set(size, loadRetinaTensors({ dataDir, size }));
    return splits.get(size)!.test;
  };
}
