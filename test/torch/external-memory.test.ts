// The binding tells V8 how much memory tensors hold outside its heap, so that garbage collection
// runs when unreferenced tensors hold a lot. It counts each storage once, however many handles
// (views, expands, grad()) share it: counted per handle, an expand counted its full broadcast
// size, and a legal zero-copy view of 2^60 bytes failed a V8 check that ends the process.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { runIsolated } from './isolated.js';

const MiB = 2 ** 20;
// Other allocations (typed arrays, which V8 also counts) may move the total a little meanwhile.
const expectAbout = (bytes: number, expected: number): void => expect(Math.abs(bytes - expected)).toBeLessThan(MiB / 4);

describe('external memory reported to V8', () => {
  it('counts a storage once for all its views, and releases it with the last of them', () => {
    const before = torch.externalMemory();
    const a = torch.zeros([1024, 1024]); // 4 MiB
    expectAbout(torch.externalMemory() - before, 4 * MiB);
    const unsqueezed = a.unsqueeze(0);
    const views = [
      a.view([1024 * 1024]),
      a.reshape([512, 2048]),
      a.transpose(0, 1),
      a.slice(0, 0, 10),
      a.detach(),
      unsqueezed,
      unsqueezed.expand([64, 1024, 1024]), // 256 MiB as broadcast, no new memory
    ];
    expectAbout(torch.externalMemory() - before, 4 * MiB);
    a.dispose();
    expectAbout(torch.externalMemory() - before, 4 * MiB); // the views still hold the storage
    for (const v of views) v.dispose();
    expectAbout(torch.externalMemory() - before, 0);
  });

  it('counts a gradient once however often it is read', () => {
    const before = torch.externalMemory();
    const p = torch.zeros([1024, 1024]);
    p.requiresGrad = true;
    torch.tidy(() => p.sum().backward());
    const grads = [p.grad!, p.grad!, p.grad!];
    expectAbout(torch.externalMemory() - before, 8 * MiB); // p and its gradient
    for (const g of grads) g.dispose();
    p.dispose();
    expectAbout(torch.externalMemory() - before, 0);
  });

  it('survives a zero-copy view of 2^60 bytes', () => {
    const outcome = runIsolated(`
      import * as torch from './src/torch/index.ts';
      const before = torch.externalMemory();
      const huge = torch.ones([1, 1]).expand([1e9, 1e9]);
      console.log(JSON.stringify({ shape: huge.shape, added: torch.externalMemory() - before }));
    `);
    expect({ status: outcome.status, signal: outcome.signal }, outcome.stderr).toEqual({ status: 0, signal: null });
    const { shape, added } = JSON.parse(outcome.stdout) as { shape: number[]; added: number };
    expect(shape).toEqual([1e9, 1e9]);
    expect(added).toBeLessThan(MiB);
  });
});
