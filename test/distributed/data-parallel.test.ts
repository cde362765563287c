// The pieces of data parallelism, between two ranks of this process: batch shards, the gradient
// reduction, the start from rank 0's state, and the check that the ranks agree.
import { describe, expect, it } from 'vitest';
import { checkRanksAgree, reduceGradients, shardOf, startFromRank0 } from '../../src/distributed/data-parallel.js';
import { ProcessGroup } from '../../src/distributed/process-group.js';
import { Linear, seedInit } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { freePort } from './free-port.js';

async function twoRanks(): Promise<ProcessGroup[]> {
  const port = await freePort();
  const join = (rank: number) =>
    ProcessGroup.join({
      masterAddr: '127.0.0.1',
      masterPort: port,
      rank,
      worldSize: 2,
      agentStore: false,
      restartCount: 0,
      timeoutMs: 10_000,
    });
  return Promise.all([join(0), join(1)]);
}

/** A linear layer whose initial weights come from `seed`. */
function layer(seed: number): Linear {
  seedInit(seed);
  return new Linear(3, 2);
}

describe('data parallelism', () => {
  it('shards a global batch as DistributedSampler does: every worldSize-th index from the rank', () => {
    const batch = Int32Array.from([9, 4, 7, 1, 3, 8, 2]);
    expect([...shardOf(batch, 0, 2)]).toEqual([9, 7, 3, 2]);
    expect([...shardOf(batch, 1, 2)]).toEqual([4, 1, 8]);
    expect([...shardOf(batch, 2, 3)]).toEqual([7, 8]);
  });

  it('reduces gradients to the share-weighted sum over ranks, the same bytes on every rank', async () => {
    const groups = await twoRanks();
    const models = [layer(1), layer(1)];
    const inputs = [torch.tensor([1, 2, 3, -1, 0, 2], [2, 3]), torch.tensor([0.5, -2, 1], [1, 3])];
    models.forEach((m, r) => m.forward(inputs[r]).sum().backward());
    const own = models.map((m) => m.parameters().map((p) => p.grad!.toArray()));
    const shares = [2 / 3, 1 / 3];
    await Promise.all(groups.map((g, r) => reduceGradients(g, models[r].parameters(), shares[r])));
    const reduced = models.map((m) => m.parameters().map((p) => p.grad!.data() as Float32Array));
    expect(Buffer.from(reduced[0][0].buffer)).toEqual(Buffer.from(reduced[1][0].buffer));
    own[0].forEach((grad, i) => {
      const expected = grad.map((g, k) => shares[0] * g + shares[1] * own[1][i][k]);
      Array.from(reduced[0][i]).forEach((v, k) => expect(v).toBeCloseTo(expected[k], 5));
    });
    for (const g of groups) g.destroy();
  });

  it('2 ranks on shards of each batch end with the weights of 1 rank on whole batches (no batch norm), within 1e-5', async () => {
    const groups = await twoRanks();
    const data = new torch.Generator(5);
    const x = data.uniform([21, 3], -1, 1);
    const y = data.uniform([21, 2], -1, 1);
    const [single, ...ranks] = [layer(3), layer(3), layer(3)];
    const [singleOpt, ...rankOpts] = [single, ...ranks].map((m) => new Adam(m.parameters(), { lr: 0.05 }));
    const meanSquaredError = (model: Linear, index: Int32Array) =>
      torch.tidy(() => {
        const i = torch.tensor(index, [index.length], 'int64');
        const d = model.forward(x.indexSelect(0, i)).sub(y.indexSelect(0, i));
        d.mul(d).mean().backward();
      });
    for (let step = 0; step < 3; step++) {
      const batch = Int32Array.from({ length: 7 }, (_, k) => step * 7 + k); // shards of 4 and 3: the shares matter
      singleOpt.zeroGrad();
      meanSquaredError(single, batch);
      singleOpt.step();
      await Promise.all(
        groups.map(async (g, r) => {
          const shard = shardOf(batch, r, 2);
          rankOpts[r].zeroGrad();
          meanSquaredError(ranks[r], shard);
          await reduceGradients(g, ranks[r].parameters(), shard.length / batch.length);
          rankOpts[r].step();
        }),
      );
    }
    single.parameters().forEach((p, i) => {
      const expected = p.toArray();
      for (const model of ranks) {
        model
          .parameters()
          [i].toArray()
          .forEach((v, k) => expect(Math.abs(v - expected[k])).toBeLessThanOrEqual(1e-5 * Math.abs(expected[k]) + 1e-7));
      }
    });
    expect(ranks[0].parameters()[0].toArray()).toEqual(ranks[1].parameters()[0].toArray());
    for (const g of groups) g.destroy();
  });

  it("starts every rank from rank 0's weights, optimizer state and loop state, and checks that they agree", async () => {
    const groups = await twoRanks();
    const models = [layer(1), layer(2)];
    const optimizers = models.map((m) => new Adam(m.parameters(), { lr: 0.1 }));
    models[0]
      .forward(torch.ones([1, 3]))
      .sum()
      .backward();
    optimizers[0].step(); // rank 0 resumed a run: its optimizer has state, rank 1's has none

    const disagree = await Promise.all(groups.map((g, r) => checkRanksAgree(g, [models[r]], 'before the start').catch((e: Error) => e)));
    for (const error of disagree) expect(String(error)).toContain("ranks diverged before the start: rank 1's weights differ from rank 0's");

    const states = await Promise.all(
      groups.map((g, r) => startFromRank0(g, [models[r]], optimizers[r], r === 0 ? { epochsDone: 3 } : undefined)),
    );
    expect(states).toEqual([{ epochsDone: 3 }, { epochsDone: 3 }]);
    const [a, b] = optimizers.map((o) => o.stateDict());
    expect(b.meta).toEqual(a.meta);
    expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.toArray()).toEqual(t.toArray());
    await Promise.all(groups.map((g, r) => checkRanksAgree(g, [models[r]], 'after the start')));
    for (const g of groups) g.destroy();
  });
});
