// How `train` runs: as one process; as one rank of a group a launcher (torchrun, a SLURM or
// Kubernetes job script) described in the environment; or, with --nproc N, as the launcher of N
// local ranks. The launcher plays torchrun's part: it hosts the TCPStore and starts each rank as
// a child process with the same arguments, the rendezvous environment and its share of the cores.
// An ensemble's members are independent: by default each trains in its own local rank, all at once.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Option } from 'commander';
import { DEFAULT_TIMEOUT_SECONDS, rankFromEnvironment } from '../../distributed/environment.js';
import { ProcessGroup } from '../../distributed/process-group.js';
import { UserError } from '../../errors.js';
import { native } from '../../torch/native.js';
import { integerAtLeast, parseNumber } from '../options.js';

export interface LaunchFlags {
  nproc?: number;
  distTimeout?: number;
}

export const nprocOption = (): Option =>
  new Option(
    '--nproc <n>',
    'local processes that share the cores: one model trains data-parallel on them, an ensemble spreads its members over them ' +
      '(default: with an ensemble of k >= 2 on 2 or more cores and no --threads, k processes training the members at once; else 1)',
  ).argParser(integerAtLeast(1));

/**
 * How many local processes `train` starts when --nproc is not given. With two or more cores an
 * ensemble's members train at once, one process each with max(1, cores/k) threads: the compact
 * CNN at batch 64 gets more work from a core per thread than from two threads in one process, and
 * k processes (not min(k, cores)) keep every core busy to the end instead of leaving one idle
 * through an odd member (BENCHMARKS.md, "Time to quality"). A thread count the user chose
 * (--threads) keeps the one process it was chosen for.
 */
export const defaultProcessCount = (members: number, cores: number, threads: number | undefined): number =>
  members >= 2 && cores >= 2 && threads === undefined ? members : 1;

export const distTimeoutOption = (): Option =>
  new Option(
    '--dist-timeout <seconds>',
    `how long data-parallel ranks wait for each other before failing (default: ${DEFAULT_TIMEOUT_SECONDS})`,
  ).argParser(parseNumber);

/**
 * Runs `trainRank` in this process's role: alone (no group), as a launched rank, or as the launcher
 * of --nproc ranks (by default, of one rank per ensemble member: defaultProcessCount).
 */
export async function launchTrain(
  flags: LaunchFlags,
  run: { ensemble: number; threads?: number },
  trainRank: (group: ProcessGroup | undefined) => Promise<void>,
): Promise<void> {
  const seconds = flags.distTimeout ?? DEFAULT_TIMEOUT_SECONDS;
  if (!(seconds > 0)) throw new UserError(`--dist-timeout ${seconds}: expected a number of seconds above 0`);
  const timeoutMs = Math.ceil(seconds * 1000);
  const launched = rankFromEnvironment(process.env, timeoutMs);
  if (flags.nproc !== undefined && flags.nproc > 1) {
    if (launched) throw new UserError(`--nproc starts its own ranks, but this process is already rank ${launched.rank} of a launcher's`);
    return startLocalRanks(flags.nproc, timeoutMs);
  }
  const concurrent = flags.nproc ?? (launched ? 1 : defaultProcessCount(run.ensemble, availableParallelism(), run.threads));
  if (concurrent > 1) {
    process.stderr.write(
      `training the ${run.ensemble} ensemble members at once in ${concurrent} processes (--nproc 1: one after another)\n`,
    );
    return startLocalRanks(concurrent, timeoutMs);
  }
  if (!launched || launched.worldSize === 1) return trainRank(undefined);
  const group = await ProcessGroup.join(launched);
  try {
    await trainRank(group);
  } finally {
    group.destroy();
  }
}

/** This command line without --nproc, for the ranks. */
function rankArguments(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--nproc') i++;
    else if (!argv[i]!.startsWith('--nproc=')) out.push(argv[i]!);
  }
  return out;
}

async function startLocalRanks(worldSize: number, timeoutMs: number): Promise<void> {
  const store = await native.tcpStore('127.0.0.1', 0, true, timeoutMs);
  const threads = String(Math.max(1, Math.floor(availableParallelism() / worldSize)));
  const args = [...process.execArgv, ...rankArguments(process.argv.slice(1))];
  const ranks: ChildProcess[] = [];
  // A launcher that is stopped stops its ranks, as torchrun does: orphaned, they would train on.
  const forward = (signal: NodeJS.Signals) => {
    for (const child of ranks) child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    for (let rank = 0; rank < worldSize; rank++) {
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(worldSize),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(native.storePort(store)),
        TORCHELASTIC_USE_AGENT_STORE: 'True',
        TORCHELASTIC_RESTART_COUNT: '0',
        RETINAGRADE_THREADS: process.env.RETINAGRADE_THREADS ?? threads,
      };
      ranks.push(spawn(process.execPath, args, { env, stdio: 'inherit' }));
    }
    await waitForRanks(ranks);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    for (const child of ranks) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    native.closeStore(store);
  }
}

/** Resolves when every rank has exited 0; rejects at the first that fails (the caller stops the rest). */
function waitForRanks(ranks: ChildProcess[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let running = ranks.length;
    ranks.forEach((child, rank) => {
      child.on('error', (error) => reject(new UserError(`rank ${rank} could not start: ${error.message}`)));
      child.on('exit', (code, signal) => {
        if (code !== 0) {
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          reject(new UserError(`rank ${rank} of ${ranks.length} ${how}; the other ranks were stopped`));
        } else if (--running === 0) resolve();
      });
    });
  });
}
