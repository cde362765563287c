// The rendezvous a launcher describes in the environment, with the names torchrun, torch.distributed
// and cluster schedulers use: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, and
// TORCHELASTIC_USE_AGENT_STORE=True when the launcher hosts the store (then every rank is a client).
import { UserError } from '../errors.js';
import type { Rendezvous } from './process-group.js';

/** torch.distributed's default timeout for the rendezvous and collectives. */
export const DEFAULT_TIMEOUT_SECONDS = 1800;

export interface LaunchedRank extends Rendezvous {
  /** The rank among those on this machine (LOCAL_RANK), 0 when unset. */
  localRank: number;
}

type Env = Record<string, string | undefined>;

/** The rank `env` launches, or undefined when RANK and WORLD_SIZE are not set (one process). */
export function rankFromEnvironment(env: Env, timeoutMs: number): LaunchedRank | undefined {
  if (env.RANK === undefined && env.WORLD_SIZE === undefined) return undefined;
  const worldSize = wholeNumber(env, 'WORLD_SIZE', 1);
  const rank = wholeNumber(env, 'RANK', 0);
  if (rank >= worldSize) throw new UserError(`environment: RANK=${rank} must be below WORLD_SIZE=${worldSize}`);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new UserError('environment: MASTER_ADDR is not set (the host of rank 0, or of the launcher that hosts the store)');
  const masterPort = wholeNumber(env, 'MASTER_PORT', 1);
  if (masterPort > 65535) throw new UserError(`environment: MASTER_PORT=${masterPort} is not a TCP port (1 to 65535)`);
  return {
    rank,
    worldSize,
    localRank: env.LOCAL_RANK === undefined ? 0 : wholeNumber(env, 'LOCAL_RANK', 0),
    masterAddr,
    masterPort,
    agentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
    restartCount: env.TORCHELASTIC_RESTART_COUNT === undefined ? 0 : wholeNumber(env, 'TORCHELASTIC_RESTART_COUNT', 0),
    timeoutMs,
    networkInterface: env.GLOO_SOCKET_IFNAME || undefined,
  };
}

function wholeNumber(env: Env, name: string, min: number): number {
  const text = env[name];
  if (text === undefined)
    throw new UserError(`environment: ${name} is not set (a launcher sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)`);
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value < min) throw new UserError(`environment: ${name}=${text} is not a whole number from ${min}`);
  return value;
}
