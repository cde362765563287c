// ResNet-18 training from a prepared dataset, ours (`train-ours.ts`: the path of `train --data`)
// against the PyTorch peer (`train_peer.py`: numpy memory maps of the same .npy files, per-sample
// torchvision transforms, a DataLoader), side by side: img/s over a bounded number of steps at
// each size from a 20,000-image folder, and peak RSS at 224 px from a 2,000- and a 20,000-image
// folder (it must not grow with the folder). Each measurement is its own child process; the sides
// alternate in ABBA order; ratios are medians of per-round ratios.
//   npx tsx bench/prepare/train.ts [--sizes 128,224] [--rows 20000] [--rss-rows 2000] [--rounds 2]
//        [--batch 16] [--steps 4] [--warmup 1] [--threads 2] [--omp-wait-policy passive|active] [--out file]
// `--rss-rows 0` leaves out the smaller folder; `--omp-wait-policy` puts both sides on one OpenMP
// wait policy (by default each side has its own: bench/README.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PEER_PYTHON, fmt, intArg, median, oursCommand, parseArgs, runChild, runMain, writeResults } from '../common.js';
import { syntheticDataset } from './synthetic.js';

type Side = 'peer' | 'ours';
interface Case {
  rows: number;
  size: number;
}
interface Run extends Case {
  side: Side;
  round: number;
  imagesPerSecond: number;
  dataSeconds: number;
  peakRssMiB: number;
  load: number;
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const sizes = (args.get('sizes') ?? '128,224').split(',').map(Number);
  const rows = intArg(args, 'rows', 20000);
  const rssRows = intArg(args, 'rss-rows', 2000);
  const rounds = intArg(args, 'rounds', 2);
  const threads = intArg(args, 'threads', 2);
  const common = ['--batch', String(intArg(args, 'batch', 16)), '--steps', String(intArg(args, 'steps', 4))];
  common.push('--warmup', String(intArg(args, 'warmup', 1)), '--threads', String(threads));
  const out = args.get('out') ?? join(import.meta.dirname, 'results-train.json');
  const ompWaitPolicy = args.get('omp-wait-policy');
  if (ompWaitPolicy !== undefined && !['passive', 'active'].includes(ompWaitPolicy))
    throw new Error('--omp-wait-policy must be passive or active');
  const env: Record<string, string> = {
    RETINAGRADE_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    ...(ompWaitPolicy ? { OMP_WAIT_POLICY: ompWaitPolicy.toUpperCase() } : {}),
  };
  const startLoad = loadavg()[0]!;

  const largest = Math.max(...sizes);
  const cases: Case[] = [...sizes.map((size) => ({ rows, size })), ...(rssRows > 0 ? [{ rows: rssRows, size: largest }] : [])];
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-bench-train-data-'));
  const dirOf = ({ rows, size }: Case): string => join(work, `rows${rows}-px${size}`);
  for (const c of cases) syntheticDataset(dirOf(c), c.rows, c.size);
  process.stderr.write(`[train --data] datasets in ${work}; load ${fmt(startLoad, 2)}\n`);

  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      const sides: Side[] = round % 2 === 0 ? ['peer', 'ours'] : ['ours', 'peer'];
      for (const side of sides) {
        const childArgs = ['--data', dirOf(c), '--size', String(c.size), ...common];
        const load = loadavg()[0]!;
        const { json } =
          side === 'peer'
            ? await runChild(PEER_PYTHON, [join(import.meta.dirname, 'train_peer.py'), ...childArgs], env)
            : await runChild(...oursCommand('bench/prepare/train-ours.ts', childArgs), env);
        const run: Run = {
          ...c,
          side,
          round,
          imagesPerSecond: Number(json.imagesPerSecond),
          dataSeconds: Number(json.dataSeconds),
          peakRssMiB: Number(json.peakRssMiB),
          load,
        };
        runs.push(run);
        process.stderr.write(
          `[train --data] round ${round + 1} ${c.rows} rows at ${c.size} px, ${side}: ${fmt(run.imagesPerSecond, 2)} img/s, ` +
            `data ${fmt(run.dataSeconds, 2)} s, peak RSS ${fmt(run.peakRssMiB, 0)} MiB (load ${fmt(load, 2)})\n`,
        );
      }
    }
  }

  const summary = cases.map((c) => {
    const of = (side: Side) => runs.filter((r) => r.side === side && r.rows === c.rows && r.size === c.size);
    const [ours, peer] = [of('ours'), of('peer')];
    const perRound = (key: 'imagesPerSecond' | 'peakRssMiB') =>
      median(ours.map((o) => o[key] / peer.find((p) => p.round === o.round)![key]));
    return {
      ...c,
      ours: { imagesPerSecond: median(ours.map((r) => r.imagesPerSecond)), peakRssMiB: median(ours.map((r) => r.peakRssMiB)) },
      peer: { imagesPerSecond: median(peer.map((r) => r.imagesPerSecond)), peakRssMiB: median(peer.map((r) => r.peakRssMiB)) },
      speedRatio: perRound('imagesPerSecond'),
      rssRatio: perRound('peakRssMiB'),
    };
  });
  const endLoad = loadavg()[0]!;
  const policy = `OMP_WAIT_POLICY ${ompWaitPolicy ?? 'unset (each side its own)'}`;
  process.stdout.write(`load average ${fmt(startLoad, 2)} at start, ${fmt(endLoad, 2)} at end; ${rounds} rounds, medians; ${policy}\n`);
  process.stdout.write('| rows | px | ours img/s | peer img/s | ours/peer speed | ours peak RSS MiB | peer peak RSS MiB |\n');
  process.stdout.write('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const s of summary) {
    process.stdout.write(
      `| ${s.rows} | ${s.size} | ${fmt(s.ours.imagesPerSecond, 2)} | ${fmt(s.peer.imagesPerSecond, 2)} | ${fmt(s.speedRatio, 2)} | ` +
        `${fmt(s.ours.peakRssMiB, 0)} | ${fmt(s.peer.peakRssMiB, 0)} |\n`,
    );
  }
  writeResults(out, 'train --data', startLoad, {
    settings: { sizes, rows, rssRows, rounds, threads, common, ompWaitPolicy },
    summary,
    runs,
  });
  rmSync(work, { recursive: true, force: true });
});
