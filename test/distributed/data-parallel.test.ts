// The pieces of data parallelism, between two ranks of this process: batch shards, the gradient
// reduction, the start from rank 0's state, and the check that the ranks agree; and synchronized
// batch norm between two rank processes (batch-norm-rank.ts).
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRanksAgree, reduceGradients, shardOf, startFromRank0 } from '../../src/distributed/data-parallel.js';
import { ProcessGroup } from '../../src/distributed/process-group.js';
import { Linear, seedInit } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import * as torch from '../../src/torch/index.js';
import { trainWithBatchNorm } from './batch-norm-rank.js';
import { freePort } from './free-port.js';

const repoRoot = resolve(import.meta.dirname, '../..');

/** Runs batch-norm-rank.ts as two ranks with synchronized batch norm and returns each rank's state dict. */
async function twoRankProcesses(): Promise<Record<string, number[]>[]> {
  const port = String(await freePort());
  const rank = (r: number) =>
    new Promise<Record<string, number[]>>((done, fail) => {
      const env = {
        ...process.env,
        RANK: String(r),
        WORLD_SIZE: '2',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: port,
        RETINAGRADE_THREADS: '1',
      };
      const script = join(repoRoot, 'test/distributed/batch-norm-rank.ts');
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, env });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => (code === 0 ? done(JSON.parse(out)) : fail(new Error(`rank ${r} exited ${code}: ${err}`))));
    });
  return Promise.all([rank(0), rank(1)]);
}

/**
 * How far `other` is from `reference` in units of the tolerance 1e-5 relative + 1e-7 absolute (the
 * largest over all elements): at most 1 means every element is within it.
 */
function toleranceUsed(reference: Record<string, number[]>, other: Record<string, number[]>): number {
  let worst = 0;
  for (const [name, values] of Object.entries(reference)) {
    values.forEach((v, k) => {
      worst = Math.max(worst, Math.abs(other[name]![k]! - v) / (1e-5 * Math.abs(v) + 1e-7));
    });
  }
  return worst;
}

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

  it('reduces gradients to their sum over ranks (of share-weighted losses), the same bytes on every rank', async () => {
    const groups = await twoRanks();
    const models = [layer(1), layer(1)];
    const inputs = [torch.tensor([1, 2, 3, -1, 0, 2], [2, 3]), torch.tensor([0.5, -2, 1], [1, 3])];
    models.forEach((m, r) => m.forward(inputs[r]).sum().backward());
    const own = models.map((m) => m.parameters().map((p) => p.grad!.toArray()));
    const shares = [2 / 3, 1 / 3];
    // Each rank's gradient of its share-weighted loss, summed: here the gradients scaled after the fact.
    models.forEach((m, r) => {
      for (const p of m.parameters()) p.grad!.mulInPlace(shares[r]);
    });
    await Promise.all(groups.map((g, r) => reduceGradients(g, models[r].parameters())));
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
    const meanSquaredError = (model: Linear, index: Int32Array, share = 1) =>
      torch.tidy(() => {
        const i = torch.tensor(index, [index.length], 'int64');
        const d = model.forward(x.indexSelect(0, i)).sub(y.indexSelect(0, i));
        d.mul(d).mean().mul(share).backward();
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
          meanSquaredError(ranks[r], shard, shard.length / batch.length);
          await reduceGradients(g, ranks[r].parameters());
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

  it('2 ranks with synchronized batch norm on shards end with the weights and statistics of 1 rank on whole batches (1e-5)', async () => {
    const groups = await twoRanks(); // per-rank statistics wait on nothing but the gradient allreduce: one process will do
    const [alone, [rank0, rank1], [perRank0]] = await Promise.all([
      trainWithBatchNorm(undefined, false),
      twoRankProcesses(),
      Promise.all(groups.map((g) => trainWithBatchNorm(g, false))),
    ]);
    for (const g of groups) g.destroy();
    expect(Object.keys(rank0)).toEqual(Object.keys(alone));
    expect(toleranceUsed(alone, rank0)).toBeLessThanOrEqual(1);
    expect(rank1).toEqual(rank0);
    // Per-rank statistics (the default) normalize each shard by its own: a different run, so the check above can fail.
    expect(toleranceUsed(alone, perRank0)).toBeGreaterThan(100);
  }, 60_000);

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
