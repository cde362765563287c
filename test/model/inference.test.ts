// Evaluating a split gives back the large blocks its batches freed (the training steps that
// follow ask for other sizes): the binding's cache is empty afterwards.
import { describe, expect, it } from 'vitest';
import { NUM_GRADES } from '../../src/data/grades.js';
import { evaluateSplit } from '../../src/model/inference.js';
import { ModelConfigSchema, createModel, createObjective, LossConfigSchema } from '../../src/nn/index.js';
import * as torch from '../../src/torch/index.js';
import { syntheticSplit } from '../helpers/synthetic-split.js';

describe.skipIf(process.env.RETINAGRADE_CPU_CACHE === '0')('evaluateSplit', () => {
  it('empties the CPU cache of large blocks once the split is scored', () => {
    const count = 64;
    const model = createModel(ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 16, numClasses: NUM_GRADES }));
    const objective = createObjective(LossConfigSchema.parse({ kind: 'ce' }), NUM_GRADES);
    const split = syntheticSplit(new torch.Generator(3), count);
    const before = torch.cpuCacheStats();
    const { probs } = evaluateSplit(model, objective, split);
    const after = torch.cpuCacheStats();
    // The forward pass at batch 64 went through large blocks (16 channels x 28 x 28 x 64 floats is 3 MiB)...
    expect(after.hits + after.misses).toBeGreaterThan(before.hits + before.misses);
    // ...which are no longer kept.
    expect(after.cachedBytes).toBe(0);
    expect(probs.length).toBe(count * NUM_GRADES);
    model.dispose();
    for (const t of [split.pixels, split.y]) t.dispose();
  });
});
