import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { ModelConfigSchema, createModel, seedInit } from '../../src/nn/index.js';
import { CrossEntropy, CumulativeOrdinal, LogProbabilityObjective } from '../../src/nn/index.js';
import { Ensemble } from '../../src/model/ensemble.js';

const config = (outputs?: number) => ModelConfigSchema.parse({ name: 'cnn', inputSize: 12, width: 4, numClasses: 5, outputs });
const members = (count: number, outputs?: number) =>
  Array.from({ length: count }, (_, k) => {
    seedInit(100 + k);
    return createModel(config(outputs)).eval();
  });
const x = new torch.Generator(7).normal([3, 3, 12, 12]);
const values = (t: torch.Tensor): number[] => Array.from(t.data() as Float32Array);

describe('Ensemble', () => {
  it.each([
    ['cross-entropy', new CrossEntropy(5), undefined],
    ['ordinal', new CumulativeOrdinal(5), 4],
  ] as const)('outputs the log of the mean of its members’ probabilities (%s heads)', (_, objective, outputs) => {
    const models = members(3, outputs);
    const ensemble = new Ensemble(models, objective).eval();
    const expected = torch.noGrad(() => models.map((m) => objective.probabilities(m.forward(x)).data() as Float32Array));
    const actual = torch.noGrad(() => new LogProbabilityObjective(5).probabilities(ensemble.forward(x)).data() as Float32Array);
    expect(actual).toHaveLength(15);
    actual.forEach((p, i) => expect(p).toBeCloseTo((expected[0]![i]! + expected[1]![i]! + expected[2]![i]!) / 3, 5));
  });

  it('classify(features(x)) is forward(x), so Grad-CAM sees the ensemble’s own output', () => {
    const ensemble = new Ensemble(members(2), new CrossEntropy(5)).eval();
    const [direct, split] = torch.noGrad(
      () => [ensemble.forward(x).data(), ensemble.classify(ensemble.features(x)).data()] as Float32Array[],
    );
    expect(Array.from(split!)).toEqual(Array.from(direct!));
    expect(torch.noGrad(() => ensemble.features(x).shape)).toEqual([3, 2 * 16, 3, 3]);
  });

  it('keeps each member’s weights under its own prefix and loads them back', () => {
    const source = new Ensemble(members(2), new CrossEntropy(5));
    const keys = [...source.stateDict().keys()];
    expect(keys.filter((k) => k.startsWith('member0.'))).toHaveLength(keys.length / 2);
    const copy = new Ensemble(members(2).reverse(), new CrossEntropy(5));
    copy.loadStateDict(source.stateDict());
    source.eval();
    copy.eval();
    expect(torch.noGrad(() => values(copy.forward(x)))).toEqual(torch.noGrad(() => values(source.forward(x))));
  });

  it('refuses to be empty', () => {
    expect(() => new Ensemble([], new CrossEntropy(5))).toThrow(/at least one member/);
  });
});

describe('LogProbabilityObjective', () => {
  it('is the negative log-likelihood of the label and reads probabilities back', () => {
    const p = [0.1, 0.2, 0.3, 0.3, 0.1, 0.5, 0.2, 0.2, 0.05, 0.05];
    const logp = torch.tensor(p.map(Math.log), [2, 5]);
    const objective = new LogProbabilityObjective(5);
    const loss = objective.loss(logp, torch.tensor([3, 0], [2], 'int64')).item();
    expect(loss).toBeCloseTo(-(Math.log(0.3) + Math.log(0.5)) / 2, 6);
    values(objective.probabilities(logp)).forEach((v, i) => expect(v).toBeCloseTo(p[i]!, 6));
  });
});
