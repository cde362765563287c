// Allreduce time over c10d/Gloo (ProcessGroup.allreduce, sum, fp32), and as a script one rank of
// the sweep scale-model.ts runs: every rank joins the group the environment describes (RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and times the allreduce at each size; each rank prints one
// JSON line (scale-model.ts reads rank 0's).
//
//   RANK=r WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=p \
//   node --import tsx bench/distributed/allreduce.ts --elements 1024,11200000 [--reps 5]
import { rankFromEnvironment } from '../../src/distributed/environment.js';
import { ProcessGroup } from '../../src/distributed/process-group.js';
import * as torch from '../../src/torch/index.js';
import { intArg, median, parseArgs } from '../common.js';

/** Times `reps` allreduces of a flat fp32 buffer of `numel` elements (after one untimed); seconds each. */
export async function timeAllreduce(group: ProcessGroup, numel: number, reps: number): Promise<number[]> {
  const buffer = torch.ones([numel]);
  const seconds: number[] = [];
  try {
    await group.allreduce(buffer, 'sum');
    for (let i = 0; i < reps; i++) {
      await group.barrier(); // every rank starts together: the time is the collective's, not a late peer's
      const t0 = performance.now();
      await group.allreduce(buffer, 'sum');
      seconds.push((performance.now() - t0) / 1000);
    }
  } finally {
    buffer.dispose();
  }
  return seconds;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const elements = (args.get('elements') ?? '').split(',').map(Number);
  if (elements.some((e) => !Number.isInteger(e) || e < 1))
    throw new Error(`--elements: expected whole numbers, got '${args.get('elements')}'`);
  const reps = intArg(args, 'reps', 5);
  torch.setNumThreads(1);
  const launched = rankFromEnvironment(process.env, 120_000);
  if (!launched) throw new Error('allreduce.ts runs as a rank: set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT');
  const group = await ProcessGroup.join(launched);
  const results = [];
  for (const numel of elements) {
    const runs = await timeAllreduce(group, numel, reps);
    results.push({ elements: numel, bytes: numel * 4, seconds: median(runs), runs });
  }
  process.stdout.write(`${JSON.stringify({ rank: group.rank, worldSize: group.worldSize, results })}\n`);
  group.destroy();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
