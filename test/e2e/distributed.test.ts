// Data-parallel training through the installed command: --nproc 2; two ranks launched by the
// environment alone while a PyTorch process hosts torch.distributed's TCPStore (as torchrun's agent
// does); a rank killed mid-run, then the run resumed. Every data-parallel epoch also checks that
// the ranks hold the same weights bit for bit (src/distributed/data-parallel.ts), so each run that
// completes here is one whose ranks agreed.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_STATE_KEY } from '../../src/model/run-dir.js';
import { freePort } from '../distributed/free-port.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin', 'retinagrade.js');
const dataDir = process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-ddp-'));
const PYTHON = '/usr/bin/python3'; // Debian's, with python3-torch
const common = ['--arch', 'cnn', '--width', '8', '--seed', '4', '--threads', '1', '--data-dir', dataDir];
const tiny = [...common, '--ensemble', '1'];

interface Finished {
  code: number | null;
  stderr: string;
  seconds: number;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Finished> } {
  const started = performance.now();
  const child = spawn(command, args, { env: { ...process.env, CI: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const done = new Promise<Finished>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr, seconds: (performance.now() - started) / 1000 })),
  );
  return { child, done };
}

const train = (args: string[], env: NodeJS.ProcessEnv = {}) => start(process.execPath, [bin, 'train', ...args], env);

const rankEnv = (rank: number, port: number, agentStore: boolean): NodeJS.ProcessEnv => ({
  RANK: String(rank),
  LOCAL_RANK: String(rank),
  WORLD_SIZE: '2',
  MASTER_ADDR: '127.0.0.1',
  MASTER_PORT: String(port),
  ...(agentStore ? { TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '0' } : {}),
});

/** The sampler state in a run's checkpoint (the loop state in its safetensors header). */
function samplerState(dir: string): Record<string, unknown> {
  const file = readFileSync(join(dir, 'checkpoint.safetensors'));
  const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString('utf8'));
  return JSON.parse(header.__metadata__[CHECKPOINT_STATE_KEY]).sampler;
}

const digest = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const epochsLogged = (dir: string): number[] =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line).epoch);

describe('data-parallel training on torch.distributed (Gloo)', () => {
  it('--nproc 2 and two ranks launched by the environment around a PyTorch TCPStore train the same run', async () => {
    const local = join(work, 'nproc');
    const viaNproc = await train([...tiny, '--epochs', '2', '--nproc', '2', '--dist-timeout', '60', '--out', local]).done;
    expect(viaNproc.code, viaNproc.stderr).toBe(0);
    expect(epochsLogged(local)).toEqual([1, 2]);

    const port = await freePort();
    const host = `
import sys, torch.distributed as dist
from datetime import timedelta
store = dist.TCPStore('127.0.0.1', ${port}, 2, True, timedelta(seconds=60), wait_for_workers=False)
print('ready', flush=True)
sys.stdin.read()  # hosts the store until the test closes stdin
`;
    const python = spawn(PYTHON, ['-c', host], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((ready, fail) => {
        python.stdout.once('data', () => ready());
        python.once('exit', (code) => fail(new Error(`the PyTorch store host exited (${code})`)));
      });
      const launched = join(work, 'env');
      const ranks = [0, 1].map((rank) =>
        train([...tiny, '--epochs', '2', '--dist-timeout', '60', '--out', launched], rankEnv(rank, port, true)),
      );
      const results = await Promise.all(ranks.map((r) => r.done));
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      expect(digest(join(launched, 'best.safetensors'))).toBe(digest(join(local, 'best.safetensors')));
      const scores = (dir: string) => {
        const { val, test, best_epoch, epochs_run } = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
        return { val, test, best_epoch, epochs_run };
      };
      expect(scores(launched)).toEqual(scores(local));
    } finally {
      python.stdin.end();
    }
  }, 240_000);

  it('--nproc 2 spreads an ensemble over the ranks and writes the run a single process writes', async () => {
    const ensemble = [...common, '--ensemble', '3', '--epochs', '1'];
    const [spread, alone] = await Promise.all([
      train([...ensemble, '--nproc', '2', '--dist-timeout', '60', '--out', join(work, 'spread')]).done,
      train([...ensemble, '--out', join(work, 'alone')]).done,
    ]);
    for (const r of [spread, alone]) expect(r.code, r.stderr).toBe(0);
    expect(digest(join(work, 'spread', 'best.safetensors'))).toBe(digest(join(work, 'alone', 'best.safetensors')));
    const log = (dir: string) =>
      readFileSync(join(work, dir, 'log.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).member);
    expect(log('spread')).toEqual([0, 1, 2]);
    expect(log('alone')).toEqual([0, 1, 2]);
  }, 240_000);

  it('a stopped --nproc launcher stops its ranks, and the run resumes on 1 rank from the sampler state it recorded', async () => {
    const out = join(work, 'stopped');
    const args = [...tiny, '--epochs', '6', '--out', out];
    const launcher = train([...args, '--nproc', '2', '--dist-timeout', '60']);
    const log = join(out, 'log.jsonl');
    await new Promise<void>((logged) => {
      const poll = setInterval(() => {
        if (existsSync(log) && readFileSync(log, 'utf8').includes('"epoch":1')) {
          clearInterval(poll);
          logged();
        }
      }, 20);
    });
    launcher.child.kill('SIGTERM');
    const stopped = await launcher.done;
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toMatch(/retinagrade: error: rank [01] of 2 was killed by SIGTERM; the other ranks were stopped/);
    const epochs = epochsLogged(out).length;
    await new Promise((wait) => setTimeout(wait, 3000)); // an epoch takes about a second: orphaned ranks would log more
    expect(epochsLogged(out).length).toBe(epochs);

    const before = samplerState(out);
    expect(before).toEqual({ kind: 'shuffle', seed: 4, nextEpoch: before.nextEpoch, globalBatch: 64, worldSize: 2 });
    expect(before.nextEpoch).toBeGreaterThanOrEqual(1);
    const resumed = await train([...args, '--resume']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming after epoch ${before.nextEpoch} (trained by 2 ranks so far, now 1)`);
    expect(epochsLogged(out)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(samplerState(out)).toEqual({ ...before, nextEpoch: 6, worldSize: 1 });
  }, 180_000);

  it('a rank killed mid-run fails the other within the timeout, and the run resumes', async () => {
    const out = join(work, 'killed');
    const port = await freePort();
    const args = (timeout: number) => [...tiny, '--epochs', '3', '--dist-timeout', String(timeout), '--out', out];
    const [rank0, rank1] = [0, 1].map((rank) => train(args(5), rankEnv(rank, port, false)));
    const log = join(out, 'log.jsonl');
    await new Promise<void>((killed) => {
      const poll = setInterval(() => {
        if (existsSync(log) && readFileSync(log, 'utf8').includes('"epoch":1')) {
          clearInterval(poll);
          rank1.child.kill('SIGKILL');
          killed();
        }
      }, 20);
    });
    const killedAt = performance.now();
    const survivor = await rank0.done;
    expect(survivor.code).toBe(1);
    expect(survivor.stderr).toMatch(/retinagrade: error: rank 0 of 2: \w+ failed \(timeout 5 s\)/);
    expect((performance.now() - killedAt) / 1000).toBeLessThan(8);

    const resumed = await train([...args(60), '--nproc', '2', '--resume']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming after epoch [12]/);
    expect(epochsLogged(out)).toEqual([1, 2, 3]);
  }, 240_000);
});
