// Epoch benchmark: one training epoch (1080 images, RetinaMNIST's train size) of ResNet-18 with
// the datasheet augmentation, cross-entropy and AdamW, batch 128, in our engine (the trainer's
// loop: batched tensor augmentation) and in PyTorch + torchvision as the official MedMNIST scripts
// run it (per-sample PIL transforms in a DataLoader, num_workers 0). Each epoch is its own child
// process; sides alternate in ABBA order. Prints a markdown table, writes bench/train/results.json.
// --arch cnn times the default recipe's CompactCnn instead (give it --batch 64, the recipe's).
// --contention N runs every epoch twice, quiet and beside N busy processes (the same competing load
// for both sides, started with the epoch's child and stopped after it), and reports each side's
// slowdown factor, loaded/quiet.
//
//   npx tsx bench/train/run.ts [--sizes 28,64,128] [--arch resnet18|cnn] [--rounds 2] [--threads 2] [--batch 128] [--n 1080]
//        [--contention 3] [--variants noyield] [--omp-wait-policy passive|active] [--out bench/train/results.json]
import { type ChildProcess, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { PEER_PYTHON, fmt, intArg, median, oursCommand, parseArgs, repoRoot, runChild, runMain, writeResults } from '../common.js';

type Side = 'peer' | 'ours' | 'ours-noyield';
const SIDE_LABEL: Record<Side, string> = {
  peer: 'PyTorch + torchvision',
  ours: 'ours (trainer loop)',
  'ours-noyield': 'ours, synchronous loop (no event-loop turn)',
};

type Condition = 'quiet' | 'loaded';

/** N processes that keep a core busy each until killed: the competing load of --contention. */
function startBusyProcesses(count: number): ChildProcess[] {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

interface Run {
  size: number;
  side: Side;
  condition: Condition;
  round: number;
  epochSeconds: number;
  dataSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
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
  const arch = args.get('arch') ?? 'resnet18';
  if (arch !== 'resnet18' && arch !== 'cnn') throw new Error(`--arch must be resnet18 or cnn, got '${arch}'`);
  const contention = intArg(args, 'contention', 0);
  const conditions: Condition[] = contention > 0 ? ['quiet', 'loaded'] : ['quiet'];
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
          '--arch',
          arch,
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
        for (const condition of round % 2 === 0 ? conditions : [...conditions].reverse()) {
          const loadBefore = loadavg()[0]!;
          const busy = condition === 'loaded' ? startBusyProcesses(contention) : [];
          const { json } = await runChild(command, commandArgs, env).finally(() => {
            for (const child of busy) child.kill('SIGKILL');
          });
          const num = (key: string): number => (typeof json[key] === 'number' ? (json[key] as number) : Number.NaN);
          const run: Run = {
            size,
            side,
            condition,
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
            `[train] ${size}px round ${round + 1}/${rounds} ${side}${contention ? ` ${condition}` : ''}: ` +
              `${fmt(run.epochSeconds, 2)} s/epoch ` +
              `(data+augment ${fmt(run.dataSeconds, 2)} s), peak RSS ${fmt(run.peakRssMiB, 0)} MiB, ` +
              `faulted in the epoch ${fmt(run.faultedMiB, 0)} MiB, load ${fmt(loadBefore, 2)}\n`,
          );
        }
      }
    }
  }

  type SideFigures = {
    epochSeconds: number;
    dataSeconds: number;
    cpuSeconds: number;
    peakRssMiB: number;
    faultedMiB: number;
    epochRuns: number[];
  };
  const find = (size: number, side: Side, condition: Condition, round: number) =>
    runs.find((r) => r.size === size && r.side === side && r.condition === condition && r.round === round);
  /** The median over rounds of a per-round ratio of two epochs (each pair ran back to back). */
  const roundRatio = (
    pair: (round: number) => [Run | undefined, Run | undefined],
    key: 'epochSeconds' | 'peakRssMiB' = 'epochSeconds',
  ): number =>
    median(
      Array.from({ length: rounds }, (_, round) => {
        const [a, b] = pair(round);
        return a && b ? a[key] / b[key] : Number.NaN;
      }),
    );
  const summary = sizes.flatMap((size) =>
    conditions.map((condition) => {
      const bySide = Object.fromEntries(
        sides.map((side) => {
          const mine = runs.filter((r) => r.size === size && r.side === side && r.condition === condition);
          const figures: SideFigures = {
            epochSeconds: median(mine.map((r) => r.epochSeconds)),
            dataSeconds: median(mine.map((r) => r.dataSeconds)),
            cpuSeconds: median(mine.map((r) => r.cpuSeconds)),
            peakRssMiB: median(mine.map((r) => r.peakRssMiB)),
            faultedMiB: median(mine.map((r) => r.faultedMiB)),
            epochRuns: mine.map((r) => r.epochSeconds),
          };
          return [side, figures];
        }),
      ) as Record<Side, SideFigures>;
      const others = sides.filter((s) => s !== 'peer');
      const ratios = Object.fromEntries(
        others.map((side) => {
          const pair = (round: number): [Run | undefined, Run | undefined] => [
            find(size, side, condition, round),
            find(size, 'peer', condition, round),
          ];
          return [side, { time: roundRatio(pair), peakRss: roundRatio(pair, 'peakRssMiB') }];
        }),
      );
      // Loaded over quiet epoch per side: how much the same competing load slows each down.
      const slowdowns =
        condition === 'loaded'
          ? Object.fromEntries(
              sides.map((side) => [side, roundRatio((round) => [find(size, side, 'loaded', round), find(size, side, 'quiet', round)])]),
            )
          : undefined;
      return { size, condition, sides: bySide, ratios, slowdowns };
    }),
  );

  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const model = arch === 'cnn' ? 'CompactCnn' : 'ResNet-18';
  const competing = contention > 0 ? ` Loaded: beside ${contention} busy processes.` : '';
  const lines = [
    `Epoch benchmark: ${model}, ${n} images, batch ${batch}, datasheet augmentation, CE, AdamW, ${threads} threads, ` +
      `${rounds} rounds alternating (ABBA); medians. OMP_WAIT_POLICY: ${ompWaitPolicy ?? 'unset'}; ${load}.${competing}`,
    '',
    '| input | condition | side | s/epoch | of which data + augment s | CPU s | peak RSS MiB | faulted in the epoch MiB | runs s/epoch |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const s of summary) {
    const where = `| ${s.size}x${s.size} | ${s.condition} |`;
    for (const side of sides) {
      const v = s.sides[side];
      const epochRuns = v.epochRuns.map((x) => fmt(x, 2)).join(', ');
      lines.push(
        `${where} ${SIDE_LABEL[side]} | ${fmt(v.epochSeconds, 2)} | ${fmt(v.dataSeconds, 2)} | ${fmt(v.cpuSeconds, 1)} | ` +
          `${fmt(v.peakRssMiB, 0)} | ${fmt(v.faultedMiB, 0)} | ${epochRuns} |`,
      );
    }
    for (const [side, r] of Object.entries(s.ratios)) {
      lines.push(
        `${where} **ratio ${side}/peer** | **${fmt(r.time, 2)}** | | | **${fmt(r.peakRss, 2)}** | | ` +
          'median of per-round ratios (time, peak RSS); goal <= 1.0 for both |',
      );
    }
    for (const [side, r] of Object.entries(s.slowdowns ?? {})) {
      lines.push(
        `${where} **slowdown of ${side}, loaded/quiet** | **${fmt(r, 2)}** | | | | | median of per-round ratios; goal ours <= peer's |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  const out = resolve(repoRoot, args.get('out') ?? 'bench/train/results.json');
  writeResults(out, 'train', startLoad, {
    settings: { sizes, arch, rounds, threads, batch, n, warmup, sides, contention, ompWaitPolicy: ompWaitPolicy ?? null },
    summary,
    runs,
  });
}

runMain(main);
