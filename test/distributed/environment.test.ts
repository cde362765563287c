// Reading a launcher's rendezvous from the environment, with errors that name the variable.
import { describe, expect, it } from 'vitest';
import { rankFromEnvironment } from '../../src/distributed/environment.js';

const torchrun = { RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '29500' };

describe('rankFromEnvironment', () => {
  it('is undefined without RANK and WORLD_SIZE: one process', () => {
    expect(rankFromEnvironment({ MASTER_ADDR: 'x' }, 1000)).toBeUndefined();
  });

  it("reads torchrun's variables; rank 0 hosts the store unless the launcher's agent does", () => {
    expect(rankFromEnvironment(torchrun, 5000)).toEqual({
      rank: 1,
      worldSize: 4,
      localRank: 1,
      masterAddr: 'node0',
      masterPort: 29500,
      agentStore: false,
      restartCount: 0,
      timeoutMs: 5000,
      networkInterface: undefined,
    });
    const agent = { ...torchrun, TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2', GLOO_SOCKET_IFNAME: 'eth1' };
    expect(rankFromEnvironment(agent, 5000)).toMatchObject({ agentStore: true, restartCount: 2, networkInterface: 'eth1' });
  });

  it('names the variable that is missing or wrong', () => {
    const { MASTER_ADDR: _, ...noAddr } = torchrun;
    expect(() => rankFromEnvironment(noAddr, 1)).toThrow('MASTER_ADDR is not set');
    expect(() => rankFromEnvironment({ ...torchrun, WORLD_SIZE: undefined }, 1)).toThrow('WORLD_SIZE is not set');
    expect(() => rankFromEnvironment({ ...torchrun, RANK: '4' }, 1)).toThrow('RANK=4 must be below WORLD_SIZE=4');
    expect(() => rankFromEnvironment({ ...torchrun, MASTER_PORT: '80000' }, 1)).toThrow('MASTER_PORT=80000 is not a TCP port');
    expect(() => rankFromEnvironment({ ...torchrun, RANK: '-1' }, 1)).toThrow('RANK=-1 is not a whole number from 0');
  });
});
