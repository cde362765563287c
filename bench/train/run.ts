// Epoch benchmark: one training epoch (1080 images, RetinaMNIST's train size) of ResNet-18 with
// the datasheet augmentation, cross-entropy and AdamW, batch 128, in our engine (the trainer's
// loop: batched tensor augmentation) and in PyTorch + torchvision as the official MedMNIST scripts
// run it (per-sample PIL transforms in a DataLoader, num_workers 0). Each epoch is its own child
// process; sides alternate in ABBA order. Prints a markdown table, writes bench/train/results.json.
//
//   npx tsx bench/train/run.ts [--sizes 28,64,128] [--rounds 2] [--threads 2] [--batch 128] [--n 1080]
//        [--variants noyield] [--omp-wait-policy passive|active] [--out bench/train/results.json]
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { PEER_PYTHON, fmt, intArg, median, oursCommand, parseArgs, repoRoot, runChild, runMain, writeResults } from '../common.js';

type Side = 'peer' | 'ours' | 'ours-noyield';
const SIDE_LABEL: Record<Side, string> = {
  peer: 'PyTorch + torchvision',
  ours: 'ours (trainer loop)',
  'ours-noyield': 'ours, synchronous loop (no event-loop turn)',
};

interface Run {
  size: number;
  side: Side;
  round: number;
  epochSeconds: number;
  dataSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** MiB faulted in during the timed epoch (minor page faults x page size, whole process). */
  faultedMiB: number;
  meanLoss: number;
  loadBefore: number;
  raw: Record<string, unknown>;
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!;
  const args = parseArgs(process.argv.slice(2));
  const sizes = (args.get('sizes') ?? '28,64,128').split(',').map(Number);
  for (const size of sizes) if (!Number.isInteger(size) || size < 8) throw new Error(`--sizes: bad size ${size}`);
  const rounds = intArg(args, 'rounds', 2);
  const threads = intArg(args, 'threads', 2);
  const batch = intArg(args, 'batch', 128);
  const n = intArg(args, 'n', 1080);
  const warmup = intArg(args, 'warmup', 2);
  const sides: Side[] = ['peer', 'ours'];
  for (const v of (args.get('variants') ?? '').split(',').filter(Boolean)) {
    if (v !== 'noyield') throw new Error(`--variants: unknown '${v}' (expected noyield)`);
    sides.push('ours-noyield');
  }
  const ompWaitPolicy = args.get('omp-wait-policy');
  if (ompWaitPolicy !== undefined && !['passive', 'active'].includes(ompWaitPolicy))
    throw new Error(`--omp-wait-policy must be passive or active`);
  const env: Record<string, string> = {
    RETINAGRADE_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    ...(ompWaitPolicy ? { OMP_WAIT_POLICY: ompWaitPolicy.toUpperCase() } : {}),
  };

  const runs: Run[] = [];
  for (const size of sizes) {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const common = [
          '--size',
          String(size),
          '--n',
          String(n),
          '--batch',
          String(batch),
          '--warmup',
          String(warmup),
          '--threads',
          String(threads),
        ];
        const [command, commandArgs] =
          side === 'peer'
            ? [PEER_PYTHON, [join(repoRoot, 'bench/train/peer.py'), ...common]]
            : oursCommand('bench/train/ours.ts', side === 'ours-noyield' ? [...common, '--no-yield'] : common);
        const loadBefore = loadavg()[0]!;
        const { json } = await runChild(command, commandArgs, env);
        const num = (key: string): number => (typeof json[key] === 'number' ? (json[key] as number) : Number.NaN);
        const run: Run = {
          size,
          side,
          round,
          epochSeconds: num('epochSeconds'),
          dataSeconds: num('dataSeconds'),
          cpuSeconds: num('cpuSeconds'),
          peakRssMiB: num('peakRssMiB'),
          faultedMiB: num('faultedMiB'),
          meanLoss: num('meanLoss'),
          loadBefore,
          raw: json,
        };
        runs.push(run);
        process.stderr.write(
          `[train] ${size}px round ${round + 1}/${rounds} ${side}: ${fmt(run.epochSeconds, 2)} s/epoch ` +
            `(data+augment ${fmt(run.dataSeconds, 2)} s), peak RSS ${fmt(run.peakRssMiB, 0)} MiB, ` +
            `faulted in the epoch ${fmt(run.faultedMiB, 0)} MiB, load ${fmt(loadBefore, 2)}\n`,
        );
      }
    }
  }

  const summary = sizes.map((size) => {
    const bySide = Object.fromEntries(
      sides.map((side) => {
        const mine = runs.filter((r) => r.size === size && r.side === side);
        return [
          side,
          {
            epochSeconds: median(mine.map((r) => r.epochSeconds)),
            dataSeconds: median(mine.map((r) => r.dataSeconds)),
            cpuSeconds: median(mine.map((r) => r.cpuSeconds)),
            peakRssMiB: median(mine.map((r) => r.peakRssMiB)),
            faultedMiB: median(mine.map((r) => r.faultedMiB)),
            epochRuns: mine.map((r) => r.epochSeconds),
          },
        ];
      }),
    ) as Record<
      Side,
      { epochSeconds: number; dataSeconds: number; cpuSeconds: number; peakRssMiB: number; faultedMiB: number; epochRuns: number[] }
    >;
    // Ratios per round (each round's pair ran back to back), then the median of those.
    const ratio = (side: Side, key: 'epochSeconds' | 'peakRssMiB'): number =>
      median(
        Array.from({ length: rounds }, (_, round) => {
          const ours = runs.find((r) => r.size === size && r.side === side && r.round === round);
          const peer = runs.find((r) => r.size === size && r.side === 'peer' && r.round === round);
          return ours && peer ? ours[key] / peer[key] : Number.NaN;
        }),
      );
    const ratios = Object.fromEntries(
      sides.filter((s) => s !== 'peer').map((s) => [s, { time: ratio(s, 'epochSeconds'), peakRss: ratio(s, 'peakRssMiB') }]),
    );
    return { size, sides: bySide, ratios };
  });

  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const lines = [
    `Epoch benchmark: ResNet-18, ${n} images, batch ${batch}, datasheet augmentation, CE, AdamW, ${threads} threads, ` +
      `${rounds} rounds alternating (ABBA); medians. OMP_WAIT_POLICY: ${ompWaitPolicy ?? 'unset'}; ${load}.`,
    '',
    '| input | side | s/epoch | of which data + augment s | CPU s | peak RSS MiB | faulted in the epoch MiB | runs s/epoch |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const s of summary) {
    for (const side of sides) {
      const v = s.sides[side];
      const epochRuns = v.epochRuns.map((x) => fmt(x, 2)).join(', ');
      lines.push(
        `| ${s.size}x${s.size} | ${SIDE_LABEL[side]} | ${fmt(v.epochSeconds, 2)} | ${fmt(v.dataSeconds, 2)} | ${fmt(v.cpuSeconds, 1)} | ` +
          `${fmt(v.peakRssMiB, 0)} | ${fmt(v.faultedMiB, 0)} | ${epochRuns} |`,
      );
    }
    for (const [side, r] of Object.entries(s.ratios)) {
      lines.push(
        `| ${s.size}x${s.size} | **ratio ${side}/peer** | **${fmt(r.time, 2)}** | | | **${fmt(r.peakRss, 2)}** | | ` +
          'median of per-round ratios (time, peak RSS); goal <= 1.0 for both |',
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  const out = resolve(repoRoot, args.get('out') ?? 'bench/train/results.json');
  writeResults(out, 'train', startLoad, {
    settings: { sizes, rounds, threads, batch, n, warmup, sides, ompWaitPolicy: ompWaitPolicy ?? null },
    summary,
    runs,
  });
}

runMain(main);
