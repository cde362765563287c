// Data-parallel benchmark: on this machine's cores, one training epoch of ResNet-18 (synthetic
// data, batch 128 global, AdamW, cross-entropy) as 1 rank x 2 threads and as 2 ranks x 1 thread,
// in our stack (ours.ts: the trainer's shard + flat allreduce over c10d/Gloo) and in PyTorch
// DistributedDataParallel on gloo (peer.py), every configuration in its own processes, the four
// alternating in ABBA order. Prints a markdown table, writes bench/distributed/results.json.
//
//   npx tsx bench/distributed/run.ts [--sizes 28,64] [--rounds 2] [--n 1080] [--batch 128] [--warmup 2]
//        [--cores 2] [--omp-wait-policy passive|active] [--out bench/distributed/results.json]
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../test/distributed/free-port.js';
import { PEER_PYTHON, fmt, intArg, median, oursCommand, parseArgs, repoRoot, runChild, runMain, writeResults } from '../common.js';

type Engine = 'peer' | 'ours';
interface Layout {
  ranks: number;
  threads: number;
}
interface Run extends Layout {
  size: number;
  engine: Engine;
  round: number;
  epochSeconds: number;
  /** Ours: the time each step waited for the gradient allreduce (flatten, allreduce, copy back). */
  reduceSecondsPerStep: number;
  /** One allreduce of a flat fp32 buffer of the model's parameter count, alone, after the epoch. */
  allreduceAloneSeconds: number;
  cpuSeconds: number;
  loadBefore: number;
}

const ENGINE_LABEL: Record<Engine, string> = { peer: 'PyTorch DDP (gloo)', ours: 'ours (c10d Gloo)' };

/** Runs one configuration: `ranks` processes around a TCPStore hosted by rank 0; returns rank 0's JSON. */
async function runRanks(engine: Engine, layout: Layout, args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const [command, commandArgs] =
    engine === 'peer'
      ? [PEER_PYTHON, [join(repoRoot, 'bench/distributed/peer.py'), ...args]]
      : oursCommand('bench/distributed/ours.ts', args);
  const threadEnv = { ...env, RETINAGRADE_THREADS: String(layout.threads), OMP_NUM_THREADS: String(layout.threads) };
  if (layout.ranks === 1) return (await runChild(command, commandArgs, threadEnv)).json;
  const port = String(await freePort());
  const ranks = Array.from({ length: layout.ranks }, (_, rank) =>
    runChild(command, commandArgs, {
      ...threadEnv,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(layout.ranks),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: port,
    }),
  );
  return (await Promise.all(ranks))[0]!.json;
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!;
  const args = parseArgs(process.argv.slice(2));
  const sizes = (args.get('sizes') ?? '28,64').split(',').map(Number);
  for (const size of sizes) if (!Number.isInteger(size) || size < 8) throw new Error(`--sizes: bad size ${size}`);
  const rounds = intArg(args, 'rounds', 2);
  const n = intArg(args, 'n', 1080);
  const batch = intArg(args, 'batch', 128);
  const warmup = intArg(args, 'warmup', 2);
  const cores = intArg(args, 'cores', 2);
  const ompWaitPolicy = args.get('omp-wait-policy');
  if (ompWaitPolicy !== undefined && !['passive', 'active'].includes(ompWaitPolicy))
    throw new Error(`--omp-wait-policy must be passive or active`);
  const env: Record<string, string> = ompWaitPolicy ? { OMP_WAIT_POLICY: ompWaitPolicy.toUpperCase() } : {};
  const layouts: Layout[] = [
    { ranks: 1, threads: cores },
    { ranks: 2, threads: Math.max(1, Math.floor(cores / 2)) },
  ];
  const configurations = layouts.flatMap((layout) => (['peer', 'ours'] as Engine[]).map((engine) => ({ engine, ...layout })));

  const runs: Run[] = [];
  for (const size of sizes) {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? configurations : [...configurations].reverse();
      for (const { engine, ...layout } of order) {
        const common = ['--size', String(size), '--n', String(n), '--batch', String(batch), '--warmup', String(warmup)];
        const loadBefore = loadavg()[0]!;
        const json = await runRanks(engine, layout, [...common, '--threads', String(layout.threads)], env);
        const num = (key: string): number => (typeof json[key] === 'number' ? (json[key] as number) : Number.NaN);
        const run: Run = {
          size,
          engine,
          ...layout,
          round,
          epochSeconds: num('epochSeconds'),
          reduceSecondsPerStep: num('reduceSecondsPerStep'),
          allreduceAloneSeconds: num('allreduceAloneSeconds'),
          cpuSeconds: num('cpuSeconds'),
          loadBefore,
        };
        runs.push(run);
        process.stderr.write(
          `[distributed] ${size}px round ${round + 1}/${rounds} ${engine} ${layout.ranks}x${layout.threads}: ` +
            `${fmt(run.epochSeconds, 2)} s/epoch, allreduce alone ${fmt(run.allreduceAloneSeconds * 1000, 0)} ms, ` +
            `load ${fmt(loadBefore, 2)}\n`,
        );
      }
    }
  }

  const pick = (size: number, engine: Engine, ranks: number) =>
    runs.filter((r) => r.size === size && r.engine === engine && r.ranks === ranks);
  /** The median over rounds of a per-round ratio of two configurations (each round's pair ran close together). */
  const ratio = (size: number, [e1, r1]: [Engine, number], [e2, r2]: [Engine, number]): number =>
    median(
      Array.from({ length: rounds }, (_, round) => {
        const a = pick(size, e1, r1).find((r) => r.round === round);
        const b = pick(size, e2, r2).find((r) => r.round === round);
        return a && b ? a.epochSeconds / b.epochSeconds : Number.NaN;
      }),
    );
  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const lines = [
    `Data-parallel benchmark: ResNet-18, ${n} synthetic images, global batch ${batch}, AdamW, CE, ${cores} cores; ` +
      `${rounds} rounds alternating (ABBA); medians. OMP_WAIT_POLICY: ${ompWaitPolicy ?? 'unset'}; ${load}.`,
    '',
    '| input | engine | ranks x threads | s/epoch | allreduce waited ms/step | allreduce alone ms | CPU s (rank 0) | runs s/epoch |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  const summary = sizes.map((size) => {
    const rows = configurations.map(({ engine, ranks, threads }) => {
      const mine = pick(size, engine, ranks);
      return {
        engine,
        ranks,
        threads,
        epochSeconds: median(mine.map((r) => r.epochSeconds)),
        reduceSecondsPerStep: median(mine.map((r) => r.reduceSecondsPerStep)),
        allreduceAloneSeconds: median(mine.map((r) => r.allreduceAloneSeconds)),
        cpuSeconds: median(mine.map((r) => r.cpuSeconds)),
        epochRuns: mine.map((r) => r.epochSeconds),
      };
    });
    const ratios = {
      oursOverPeerTwoRanks: ratio(size, ['ours', 2], ['peer', 2]),
      oursOverPeerOneRank: ratio(size, ['ours', 1], ['peer', 1]),
      oursTwoRanksOverOne: ratio(size, ['ours', 2], ['ours', 1]),
      peerTwoRanksOverOne: ratio(size, ['peer', 2], ['peer', 1]),
    };
    for (const r of rows) {
      const waited = r.ranks > 1 && r.engine === 'ours' ? fmt(r.reduceSecondsPerStep * 1000, 0) : r.ranks > 1 ? 'overlapped' : '-';
      const alone = r.ranks > 1 ? fmt(r.allreduceAloneSeconds * 1000, 0) : '-';
      lines.push(
        `| ${size}x${size} | ${ENGINE_LABEL[r.engine]} | ${r.ranks} x ${r.threads} | ${fmt(r.epochSeconds, 2)} | ${waited} | ${alone} | ` +
          `${fmt(r.cpuSeconds, 1)} | ${r.epochRuns.map((x) => fmt(x, 2)).join(', ')} |`,
      );
    }
    lines.push(
      `| ${size}x${size} | **ratio ours/peer, 2 ranks** | | **${fmt(ratios.oursOverPeerTwoRanks, 2)}** | | | | goal <= 1.05 |`,
      `| ${size}x${size} | ratio ours/peer, 1 rank | | ${fmt(ratios.oursOverPeerOneRank, 2)} | | | | |`,
      `| ${size}x${size} | ratio 2 ranks / 1 rank: ours, peer | | ` +
        `${fmt(ratios.oursTwoRanksOverOne, 2)}, ${fmt(ratios.peerTwoRanksOverOne, 2)} | | | | |`,
    );
    return { size, rows, ratios };
  });
  process.stdout.write(`${lines.join('\n')}\n`);

  const out = resolve(repoRoot, args.get('out') ?? 'bench/distributed/results.json');
  writeResults(out, 'distributed', startLoad, {
    settings: { sizes, rounds, n, batch, warmup, cores, ompWaitPolicy: ompWaitPolicy ?? null },
    summary,
    runs,
  });
}

runMain(main);
