// The c10d binding through ProcessGroup: collectives between ranks of this process, a rank that
// never arrives, and a group shared with a PyTorch process that hosts the store as torchrun does.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ProcessGroup, type Rendezvous } from '../../src/distributed/process-group.js';
import { UserError } from '../../src/errors.js';
import * as torch from '../../src/torch/index.js';
import { freePort } from './free-port.js';

const PYTHON = '/usr/bin/python3'; // Debian's, with python3-torch

const rendezvous = (rank: number, worldSize: number, masterPort: number, timeoutMs = 10_000): Rendezvous => ({
  masterAddr: '127.0.0.1',
  masterPort,
  rank,
  worldSize,
  agentStore: false,
  restartCount: 0,
  timeoutMs,
});

describe('ProcessGroup over c10d Gloo', () => {
  it('allreduce (sum, avg), broadcast, allgather, barrier and a JSON broadcast between two ranks', async () => {
    const port = await freePort();
    const groups = await Promise.all([0, 1].map((rank) => ProcessGroup.join(rendezvous(rank, 2, port))));
    const values = groups.map((g) => torch.tensor([1 + g.rank, 10 * (g.rank + 1), -3], [3]));
    await Promise.all(groups.map((g, r) => g.allreduce(values[r], 'sum')));
    for (const v of values) expect(v.toArray()).toEqual([3, 30, -6]);
    await Promise.all(groups.map((g, r) => g.allreduce(values[r], 'avg')));
    for (const v of values) expect(v.toArray()).toEqual([3, 30, -6]);
    await Promise.all(groups.map((g, r) => g.allreduce(values[r], 'max')));

    const own = groups.map((g) => torch.full([2], g.rank + 5));
    await Promise.all(groups.map((g, r) => g.broadcast(own[r], 1)));
    for (const v of own) expect(v.toArray()).toEqual([6, 6]);

    const gathered = await Promise.all(groups.map((g) => g.allgather(torch.full([2], g.rank * 2, 'int64'))));
    for (const outputs of gathered)
      expect(outputs.map((t) => t.toArray())).toEqual([
        [0, 0],
        [2, 2],
      ]);

    await Promise.all(groups.map((g) => g.barrier()));
    const json = await Promise.all(groups.map((g) => g.broadcastJson(g.rank === 0 ? { epoch: 3, best: [0.5, null] } : undefined)));
    expect(json[1]).toEqual({ epoch: 3, best: [0.5, null] });

    for (const g of groups) g.destroy();
    await expect(groups[0].barrier()).rejects.toThrow('already destroyed');
  });

  it('a peer that never arrives fails the rendezvous within the timeout, naming the rank and the timeout', async () => {
    const started = performance.now();
    const error = await ProcessGroup.join(rendezvous(0, 2, await freePort(), 2000)).catch((e: unknown) => e);
    const seconds = (performance.now() - started) / 1000;
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/^rank 0 of 2: the other ranks did not all join .* within 2 s/);
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(6);
  });

  it('shares a group with a PyTorch process that hosts the store as torchrun does (agent store)', async () => {
    const port = await freePort();
    // PyTorch hosts the TCPStore (as torchrun's agent would), then joins as rank 1 by the environment.
    const script = `
import os, torch, torch.distributed as dist
from datetime import timedelta
store = dist.TCPStore('127.0.0.1', ${port}, 2, True, timedelta(seconds=20), wait_for_workers=False)
dist.init_process_group('gloo', init_method='env://', timeout=timedelta(seconds=20))
t = torch.tensor([1.5, -2.0, 4.0])
dist.all_reduce(t)
w = torch.zeros(3)
dist.broadcast(w, 0)
print(t.tolist(), w.tolist(), flush=True)
dist.destroy_process_group()
`;
    const env = {
      ...process.env,
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      RANK: '1',
      WORLD_SIZE: '2',
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RESTART_COUNT: '0',
    };
    const peer = spawn(PYTHON, ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    peer.stdout.on('data', (d) => (out += d));
    peer.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => peer.on('close', resolve));

    const group = await ProcessGroup.join({ ...rendezvous(0, 2, port, 20_000), agentStore: true });
    const t = torch.tensor([0.5, 1, 2], [3]);
    await group.allreduce(t, 'sum');
    expect(t.toArray()).toEqual([2, -1, 6]);
    await group.broadcast(torch.tensor([7, 8, 9], [3]), 0);
    group.destroy();
    expect(await exited, err).toBe(0);
    expect(out.trim()).toBe('[2.0, -1.0, 6.0] [7.0, 8.0, 9.0]');
  });
});
