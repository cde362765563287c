// Data parallelism with DistributedDataParallel's semantics, for the training loop: every rank
// starts from rank 0's state, takes its shard of each global batch, and applies the same averaged
// gradient, so the ranks' weights stay identical bit for bit (checked after every epoch).
import { createHash } from 'node:crypto';
import { BatchNorm2d, type Module } from '../nn/index.js';
import type { Optimizer } from '../optim/index.js';
import * as torch from '../torch/index.js';
import type { ProcessGroup } from './process-group.js';

/** Rank `rank`'s part of a global batch: every worldSize-th index from its own, as DistributedSampler splits. */
export function shardOf(batch: Int32Array, rank: number, worldSize: number): Int32Array {
  return batch.filter((_, i) => i % worldSize === rank);
}

/**
 * A seed for rank `rank`'s own random draws (augmentation, dropout), so that the ranks do not draw
 * the same numbers for different images; rank 0 keeps `seed`, so one rank runs as one process does.
 */
export const rankSeed = (seed: number, rank: number): number => (rank === 0 ? seed : (seed * 31 + rank * 1_000_003) % 2 ** 31);

/**
 * Replaces every rank's gradients by their sum over the ranks, in one allreduce on a flat buffer.
 * Each rank's loss is its shard's mean loss times its share of the global batch (shard size over
 * global batch size), so the sum is the gradient of the global batch's mean loss.
 */
export async function reduceGradients(group: ProcessGroup, params: readonly torch.Tensor[]): Promise<void> {
  const grads = params.map((p) => p.grad).filter((g): g is torch.Tensor => g !== undefined);
  const flat = torch.tidy(() => torch.cat(grads.map((g) => g.reshape([-1]))));
  try {
    await group.allreduce(flat, 'sum');
    torch.tidy(() => {
      let offset = 0;
      for (const g of grads) {
        g.copyInPlace(flat.slice(0, offset, offset + g.numel).reshape(g.shape));
        offset += g.numel;
      }
    });
  } finally {
    flat.dispose();
    for (const g of grads) g.dispose(); // the handles; the gradients stay with their parameters
  }
}

/**
 * Makes `model`'s batch-norm layers normalize by the statistics of the global batch while they
 * train (SyncBatchNorm): each sums its channel statistics over the ranks in the forward pass, and
 * their gradients in the backward pass. Every rank must run the same layers on every step. Without
 * a group, back to each process's own statistics.
 */
export function synchronizeBatchNorm(group: ProcessGroup | undefined, model: Module): void {
  const sumOverRanks = group && ((t: torch.Tensor) => group.sumWithGradient(t));
  for (const m of model.modules()) if (m instanceof BatchNorm2d) m.sumOverRanks = sumOverRanks;
}

/** Sums numbers over the ranks (in float64). */
export async function sumOverRanks(group: ProcessGroup, values: number[]): Promise<number[]> {
  const t = torch.tensor(Float64Array.from(values), [values.length], 'float64');
  try {
    await group.allreduce(t, 'sum');
    return t.toArray();
  } finally {
    t.dispose();
  }
}

/** Rank `root`'s values into every rank's tensors (the same names, shapes and dtypes on every rank). */
export async function broadcastTensors(group: ProcessGroup, tensors: Iterable<torch.Tensor>, root = 0): Promise<void> {
  for (const t of tensors) await group.broadcast(t, root);
}

/** Rank 0's buffers (batch-norm statistics) into every rank's modules, as DDP's broadcast_buffers does. */
export async function broadcastBuffers(group: ProcessGroup, modules: (Module | undefined)[]): Promise<void> {
  const buffers = modules.flatMap((m) => m?.namedBuffers() ?? []).map(([, t]) => t);
  await broadcastTensors(group, buffers);
}

/**
 * Every rank takes rank 0's modules and optimizer state (fresh, or resumed from rank 0's
 * checkpoint: only rank 0 needs to see the run directory) and returns rank 0's `state`.
 */
export async function startFromRank0<S>(group: ProcessGroup, modules: (Module | undefined)[], optimizer: Optimizer, state: S): Promise<S> {
  for (const m of modules) if (m) await broadcastTensors(group, m.stateDict().values());
  const own = group.rank === 0 ? optimizer.stateDict() : undefined;
  const layout = own && {
    state,
    meta: own.meta,
    tensors: [...own.tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype })),
  };
  const received = await group.broadcastJson(layout);
  const tensors = own?.tensors ?? new Map(received.tensors.map(({ name, shape, dtype }) => [name, torch.zeros(shape, dtype)]));
  try {
    await broadcastTensors(group, tensors.values());
    if (group.rank !== 0) optimizer.loadStateDict({ tensors, meta: received.meta });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return group.rank === 0 ? state : received.state;
}

/** A digest of modules' parameters and buffers: equal on two ranks only if their bytes are. */
export function weightsDigest(modules: (Module | undefined)[]): Uint8Array {
  const hash = createHash('sha256');
  for (const m of modules) {
    for (const [name, t] of m?.stateDict() ?? []) {
      const data = t.data();
      hash.update(name);
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return new Uint8Array(hash.digest());
}

/** Throws unless every rank's modules hold the same bytes: a desynchronized run is a bug, not a result. */
export async function checkRanksAgree(group: ProcessGroup, modules: (Module | undefined)[], when: string): Promise<void> {
  const own = torch.tensor(weightsDigest(modules), [32], 'uint8');
  const all = await group.allgather(own);
  const digests = all.map((t) => Buffer.from(t.data() as Uint8Array).toString('hex'));
  for (const t of [own, ...all]) t.dispose();
  const differing = digests.findIndex((d) => d !== digests[0]);
  if (differing > 0) throw new Error(`data-parallel ranks diverged ${when}: rank ${differing}'s weights differ from rank 0's`);
}
