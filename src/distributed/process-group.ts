// A group of ranks that train together, over PyTorch's own distributed engine: c10d's TCPStore
// for the rendezvous and ProcessGroupGloo for the collectives (native/src/distributed.cc). The
// store's keys are laid out as torch.distributed.init_process_group('gloo') lays them out, so a
// group may mix retinagrade ranks and PyTorch processes.
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import * as torch from '../torch/index.js';
import { native, type ProcessGroupHandle, type ReduceOp, type StoreHandle } from '../torch/native.js';

/** Where and how a rank meets the others: what torchrun and cluster schedulers put in the environment. */
export interface Rendezvous {
  /** Host of the TCPStore (MASTER_ADDR). */
  masterAddr: string;
  /** Its port (MASTER_PORT). */
  masterPort: number;
  rank: number;
  worldSize: number;
  /** A launcher hosts the store and every rank is a client (torchrun's TORCHELASTIC_USE_AGENT_STORE=True); else rank 0 hosts it. */
  agentStore: boolean;
  /** The launcher's restart count (TORCHELASTIC_RESTART_COUNT), which names the agent store's key prefix. */
  restartCount: number;
  /** Bounds the rendezvous and every collective: a rank that dies or never arrives fails the others within it. */
  timeoutMs: number;
  /** The network interface Gloo uses (GLOO_SOCKET_IFNAME); by default the host name's address. */
  networkInterface?: string;
}

/**
 * torch.distributed 1.13's barrier at the end of init_process_group, counted in the "default_pg"
 * store under this key: a PyTorch peer waits in it for every rank. (PyTorch >= 2.1 skips it unless
 * TORCH_DIST_INIT_BARRIER=1; a retinagrade rank always takes part, so such peers must set it.)
 */
const INIT_BARRIER_KEY = 'store_based_barrier_key:1';

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export type Reduction = ReduceOp | 'avg';

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
  #group: ProcessGroupHandle | undefined;

  private constructor(group: ProcessGroupHandle, rendezvous: Rendezvous) {
    this.#group = group;
    this.rank = rendezvous.rank;
    this.worldSize = rendezvous.worldSize;
    this.timeoutMs = rendezvous.timeoutMs;
  }

  /** Connects to the store (rank 0 hosts it unless a launcher does) and waits for every rank. */
  static async join(rendezvous: Rendezvous): Promise<ProcessGroup> {
    const { masterAddr, masterPort, rank, worldSize, timeoutMs, networkInterface } = rendezvous;
    const where = `rank ${rank} of ${worldSize}`;
    const store = `the store at ${masterAddr}:${masterPort}`;
    let tcp: StoreHandle;
    try {
      tcp = await native.tcpStore(masterAddr, masterPort, rank === 0 && !rendezvous.agentStore, timeoutMs);
    } catch (error) {
      throw new UserError(`${where}: cannot reach ${store} within ${seconds(timeoutMs)}: ${message(error)}`);
    }
    // The keys of PyTorch's default group: [the agent store's attempt/]default_pg/0/.
    const attempt = rendezvous.agentStore ? native.prefixStore(tcp, `/worker/attempt_${rendezvous.restartCount}`) : tcp;
    const defaultPg = native.prefixStore(attempt, 'default_pg');
    const groupStore = native.prefixStore(defaultPg, '0');
    const deadline = performance.now() + timeoutMs;
    let group: ProcessGroupHandle | undefined;
    try {
      const device = networkInterface ? 'interface' : 'default';
      group = await native.processGroupGloo(groupStore, rank, worldSize, timeoutMs, device, networkInterface);
      await initBarrier(defaultPg, worldSize, deadline);
      await native.setSequenceNumber(group);
      return new ProcessGroup(group, rendezvous);
    } catch (error) {
      if (group) native.destroyProcessGroup(group);
      throw new UserError(
        `${where}: the other ranks did not all join through ${store} within ${seconds(timeoutMs)} (${message(error)}): ` +
          'start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE',
      );
    } finally {
      for (const s of new Set([groupStore, defaultPg, attempt, tcp])) native.closeStore(s); // the group holds what it needs
    }
  }

  /** In place: every rank's `t` becomes the reduction over all ranks ('avg': the sum divided by the world size). */
  async allreduce(t: torch.Tensor, op: Reduction = 'sum'): Promise<void> {
    await this.#collective('allreduce', native.allreduce(this.#handle, t.handle, op === 'avg' ? 'sum' : op));
    if (op === 'avg') t.divInPlace(this.worldSize);
  }

  /**
   * A new tensor, the sum of `t` over the ranks, whose gradient in the backward pass is the sum of
   * the ranks' gradients (torch.distributed.nn.functional.all_reduce). It waits on this thread,
   * forward and backward: for the few numbers of a statistic inside a forward pass (synchronized
   * batch norm), where an await cannot go. A rank that stops fails it after the group's timeout.
   */
  sumWithGradient(t: torch.Tensor): torch.Tensor {
    try {
      return new torch.Tensor(native.allreduceAutograd(this.#handle, t.handle));
    } catch (error) {
      throw this.#failure('allreduce', error);
    }
  }

  /** In place: every rank's `t` becomes rank `root`'s. */
  async broadcast(t: torch.Tensor, root = 0): Promise<void> {
    return this.#collective('broadcast', native.broadcast(this.#handle, t.handle, root));
  }

  /** Every rank's `t`, in rank order (new tensors the caller frees). */
  async allgather(t: torch.Tensor): Promise<torch.Tensor[]> {
    const outputs = Array.from({ length: this.worldSize }, () => torch.zeros(t.shape, t.dtype));
    await this.#collective('allgather', native.allgather(this.#handle, handles(outputs), t.handle));
    return outputs;
  }

  /** Settles once every rank has called it. */
  async barrier(): Promise<void> {
    return this.#collective('barrier', native.barrier(this.#handle));
  }

  /** Rank `root`'s JSON value, on every rank (the others pass undefined). */
  async broadcastJson<T>(value: T | undefined, root = 0): Promise<T> {
    const bytes = this.rank === root ? new TextEncoder().encode(JSON.stringify(value)) : new Uint8Array();
    const length = torch.tensor([bytes.length], [1], 'int64');
    await this.broadcast(length, root);
    const buffer = this.rank === root ? torch.tensor(bytes, [bytes.length], 'uint8') : torch.zeros([length.item()], 'uint8');
    await this.broadcast(buffer, root);
    const text = new TextDecoder().decode(buffer.data());
    length.dispose();
    buffer.dispose();
    return JSON.parse(text) as T;
  }

  /** Leaves the group; collectives already started settle first. */
  destroy(): void {
    if (this.#group) native.destroyProcessGroup(this.#group);
    this.#group = undefined;
  }

  get #handle(): ProcessGroupHandle {
    if (!this.#group) throw new Error('the process group was already destroyed');
    return this.#group;
  }

  async #collective(what: string, done: Promise<void>): Promise<void> {
    try {
      await done;
    } catch (error) {
      throw this.#failure(what, error);
    }
  }

  #failure(what: string, error: unknown): UserError {
    return new UserError(
      `rank ${this.rank} of ${this.worldSize}: ${what} failed (timeout ${seconds(this.timeoutMs)}): ${message(error)}: ` +
        'another rank stopped, or did not reach this step',
    );
  }
}

/** Counts this rank in, then waits until every rank has (PyTorch's _store_based_barrier). */
async function initBarrier(store: StoreHandle, worldSize: number, deadline: number): Promise<void> {
  let arrived = await native.storeAdd(store, INIT_BARRIER_KEY, 1);
  while (arrived < worldSize) {
    if (performance.now() > deadline) throw new Error(`${arrived} of ${worldSize} ranks reached the barrier after forming the group`);
    await sleep(10);
    arrived = await native.storeAdd(store, INIT_BARRIER_KEY, 0);
  }
}

const handles = (ts: torch.Tensor[]) => ts.map((t) => t.handle);
const seconds = (ms: number): string => `${ms / 1000} s`;
