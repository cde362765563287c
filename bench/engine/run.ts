// Engine benchmark: the same models trained and run in our engine (TypeScript over libtorch) and
// in the PyTorch peer, side by side. Each measurement is its own child process (ours: node,
// peer: Debian's python3), alternating peer/ours in ABBA order so that drift in the machine's
// load hits both sides alike. Prints a markdown table and writes bench/engine/results.json.
//
//   npx tsx bench/engine/run.ts [--quick] [--rounds 2] [--threads 2] [--batch 128] [--steps N]
//        [--cases resnet18-28,cnn-64] [--precisions fp32,bf16] [--variants noyield,heap,nocache]
//        [--omp-wait-policy passive|active] [--batch-range 16-64]
//
// --batch-range trains each step on a batch size drawn from that range (the same sizes on both
// sides): what a step with varying shapes faults in, against the peak of live large blocks.
//
// --precisions runs each case at each precision on both sides (ours: the model's precision,
// src/torch/precision.ts; the peer: torch.cpu.amp.autocast(dtype=torch.bfloat16) around the
// forward pass), the precisions alternating within each round like the sides, and adds the
// bf16/fp32 speed-up of each side.
//
// --omp-wait-policy sets OMP_WAIT_POLICY for both sides. Unset, ours spins briefly then sleeps
// (src/torch/native.ts) and PyTorch spins long, which matters on a loaded machine.
//
// --variants adds diagnostic sides of ours (see bench/README.md):
//   noyield  ours in a synchronous loop, without the trainer's event-loop turn after each step
//   heap     ours with glibc's malloc kept off mmap (MALLOC_MMAP_MAX_=0,
//            MALLOC_TRIM_THRESHOLD_=4e9): freed tensor memory is reused instead of re-faulted
//   nocache  ours without the binding's cache of large tensor blocks (RETINAGRADE_CPU_CACHE=0):
//            libtorch's default allocator, i.e. glibc malloc for every tensor
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import {
  PEER_PYTHON,
  fmt,
  intArg,
  median,
  oursCommand,
  parseArgs,
  rangeArg,
  repoRoot,
  runChild,
  runMain,
  writeResults,
} from '../common.js';

interface Case {
  id: string;
  model: 'resnet18' | 'cnn';
  size: number;
  label: string;
}
const CASES: Case[] = [
  { id: 'resnet18-28', model: 'resnet18', size: 28, label: 'ResNet-18 (MedMNIST 3x3 stem) @28' },
  { id: 'cnn-64', model: 'cnn', size: 64, label: '6-conv CNN (CompactCnn, width 32) @64' },
  { id: 'resnet18-64', model: 'resnet18', size: 64, label: 'ResNet-18 (7x7/2 stem + max-pool) @64' },
  { id: 'resnet18-128', model: 'resnet18', size: 128, label: 'ResNet-18 (7x7/2 stem + max-pool) @128' },
  { id: 'cnn-28', model: 'cnn', size: 28, label: '6-conv CNN (CompactCnn, width 32) @28' },
];
const PRECISIONS = ['fp32', 'bf16'] as const;
type Precision = (typeof PRECISIONS)[number];

type Side = 'peer' | 'ours' | 'ours-noyield' | 'ours-heap' | 'ours-nocache';
const SIDE_LABEL: Record<Side, string> = {
  peer: 'PyTorch peer',
  ours: 'ours',
  'ours-noyield': 'ours, synchronous loop (no event-loop turn)',
  'ours-heap': 'ours, heap-only malloc',
  'ours-nocache': 'ours, default libtorch allocator (no block cache)',
};
const VARIANTS: Record<string, Side> = { noyield: 'ours-noyield', heap: 'ours-heap', nocache: 'ours-nocache' };

interface Run {
  case: string;
  precision: Precision;
  side: Side;
  round: number;
  trainImgPerSec: number;
  inferImgPerSec: number;
  peakRssMiB: number;
  peakRssAfterTrainMiB: number;
  /** Over the timed training steps: MiB faulted in (minor faults x page size); ours also the block cache's figures. */
  trainMemory: Record<string, number>;
  trainCpuSeconds: number;
  trainWallSeconds: number;
  /** Median over the timed training steps of optimizer.step()'s wall time. */
  optimizerStepMs: number;
  loadBefore: number;
  processSeconds: number;
  raw: Record<string, unknown>;
}

async function measure(
  c: Case,
  precision: Precision,
  side: Side,
  round: number,
  stepArgs: string[],
  threads: number,
  baseEnv: Record<string, string>,
): Promise<Run> {
  const args = ['--model', c.model, '--size', String(c.size), '--threads', String(threads), '--precision', precision, ...stepArgs];
  const env: Record<string, string> = { ...baseEnv, RETINAGRADE_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  if (side === 'ours-heap') Object.assign(env, { RETINAGRADE_CPU_CACHE: '0', MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '4000000000' });
  if (side === 'ours-nocache') env.RETINAGRADE_CPU_CACHE = '0';
  const oursArgs = side === 'ours-noyield' ? [...args, '--no-yield'] : args;
  const [command, commandArgs] =
    side === 'peer' ? [PEER_PYTHON, [join(repoRoot, 'bench/engine/peer.py'), ...args]] : oursCommand('bench/engine/ours.ts', oursArgs);
  const loadBefore = loadavg()[0]!;
  const { json, seconds } = await runChild(command, commandArgs, env);
  const num = (key: string): number => (typeof json[key] === 'number' ? (json[key] as number) : Number.NaN);
  const trainSteps = (json.trainStepSeconds as number[] | undefined) ?? [];
  return {
    case: c.id,
    precision,
    side,
    round,
    trainImgPerSec: num('trainImgPerSec'),
    inferImgPerSec: num('inferImgPerSec'),
    peakRssMiB: num('peakRssMiB'),
    peakRssAfterTrainMiB: num('peakRssAfterTrainMiB'),
    trainMemory: (json.train as Record<string, number> | undefined) ?? {},
    trainCpuSeconds: num('trainCpuSeconds'),
    trainWallSeconds: trainSteps.reduce((a, b) => a + b, 0),
    optimizerStepMs: 1000 * median((json.optimizerStepSeconds as number[] | undefined) ?? []),
    loadBefore,
    processSeconds: seconds,
    raw: json,
  };
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!;
  const args = parseArgs(process.argv.slice(2));
  const quick = args.has('quick');
  const rounds = intArg(args, 'rounds', 2);
  const threads = intArg(args, 'threads', 2);
  const batch = intArg(args, 'batch', 128);
  const wanted = (args.get('cases') ?? CASES.map((c) => c.id).join(',')).split(',');
  const cases = CASES.filter((c) => wanted.includes(c.id));
  if (cases.length === 0) throw new Error(`--cases: none of ${wanted.join(', ')} is one of ${CASES.map((c) => c.id).join(', ')}`);
  const variants = (args.get('variants') ?? '').split(',').filter(Boolean);
  for (const v of variants)
    if (!(v in VARIANTS)) throw new Error(`--variants: unknown '${v}' (expected ${Object.keys(VARIANTS).join(', ')})`);
  const sides: Side[] = ['peer', 'ours', ...variants.map((v) => VARIANTS[v]!)];
  const precisions = (args.get('precisions') ?? 'fp32').split(',') as Precision[];
  for (const p of precisions)
    if (!PRECISIONS.includes(p)) throw new Error(`--precisions: unknown '${p}' (expected ${PRECISIONS.join(', ')})`);
  const units = precisions.flatMap((precision) => sides.map((side) => ({ precision, side })));
  const ompWaitPolicy = args.get('omp-wait-policy');
  if (ompWaitPolicy !== undefined && !['passive', 'active'].includes(ompWaitPolicy))
    throw new Error(`--omp-wait-policy must be passive or active`);
  const baseEnv: Record<string, string> = ompWaitPolicy ? { OMP_WAIT_POLICY: ompWaitPolicy.toUpperCase() } : {};
  const timedSteps = intArg(args, 'steps', quick ? 3 : 10);
  const warmupSteps = quick ? 1 : 2;
  const stepArgs = ['--batch', String(batch), '--warmup', String(warmupSteps), '--steps', String(timedSteps)];
  stepArgs.push('--infer-warmup', '1', '--infer-steps', String(timedSteps));
  const batchRange = rangeArg(args, 'batch-range');
  if (batchRange) stepArgs.push('--batch-range', batchRange.join('-'));

  const runs: Run[] = [];
  for (const c of cases) {
    for (let round = 0; round < rounds; round++) {
      // ABBA: peer (and fp32) first in even rounds, last in odd ones.
      const order = round % 2 === 0 ? units : [...units].reverse();
      for (const { precision, side } of order) {
        const run = await measure(c, precision, side, round, stepArgs, threads, baseEnv);
        runs.push(run);
        process.stderr.write(
          `[engine] ${c.id} ${precision} round ${round + 1}/${rounds} ${side}: train ${fmt(run.trainImgPerSec)} img/s, ` +
            `infer ${fmt(run.inferImgPerSec)} img/s, peak RSS ${fmt(run.peakRssMiB, 0)} MiB, ` +
            `faulted in training ${fmt(run.trainMemory.faultedMiB ?? Number.NaN, 0)} MiB ` +
            `(load ${fmt(run.loadBefore, 2)}, ${fmt(run.processSeconds, 0)} s)\n`,
        );
      }
    }
  }

  const measured = cases.flatMap((c) => precisions.map((precision) => ({ c, precision })));
  const summary = measured.map(({ c, precision }) => {
    const bySide = Object.fromEntries(
      sides.map((side) => {
        const mine = runs.filter((r) => r.case === c.id && r.precision === precision && r.side === side);
        return [
          side,
          {
            trainImgPerSec: median(mine.map((r) => r.trainImgPerSec)),
            inferImgPerSec: median(mine.map((r) => r.inferImgPerSec)),
            peakRssMiB: median(mine.map((r) => r.peakRssMiB)),
            trainCpuPerImageMs: median(mine.map((r) => (1000 * r.trainCpuSeconds) / (r.trainImgPerSec * r.trainWallSeconds))),
            optimizerStepMs: median(mine.map((r) => r.optimizerStepMs)),
            trainRuns: mine.map((r) => r.trainImgPerSec),
            inferRuns: mine.map((r) => r.inferImgPerSec),
            rssRuns: mine.map((r) => r.peakRssMiB),
            trainFaultedMiB: median(mine.map((r) => r.trainMemory.faultedMiB ?? Number.NaN)),
            cacheHits: median(mine.map((r) => r.trainMemory.cacheHits ?? Number.NaN)),
            cacheMisses: median(mine.map((r) => r.trainMemory.cacheMisses ?? Number.NaN)),
            peakLiveMiB: median(mine.map((r) => r.trainMemory.peakLiveMiB ?? Number.NaN)),
          },
        ];
      }),
    ) as Record<
      Side,
      {
        trainImgPerSec: number;
        inferImgPerSec: number;
        peakRssMiB: number;
        trainCpuPerImageMs: number;
        optimizerStepMs: number;
        trainRuns: number[];
        inferRuns: number[];
        rssRuns: number[];
        trainFaultedMiB: number;
        cacheHits: number;
        cacheMisses: number;
        peakLiveMiB: number;
      }
    >;
    // Ratios per round (each round's pair ran back to back), then the median of those.
    const pairedRatio = (side: Side, key: 'trainImgPerSec' | 'inferImgPerSec' | 'peakRssMiB'): number =>
      median(
        Array.from({ length: rounds }, (_, round) => {
          const at = (s: Side) => runs.find((r) => r.case === c.id && r.precision === precision && r.side === s && r.round === round);
          const [ours, peer] = [at(side), at('peer')];
          return ours && peer ? ours[key] / peer[key] : Number.NaN;
        }),
      );
    const ratios = Object.fromEntries(
      sides
        .filter((s) => s !== 'peer')
        .map((s) => [
          s,
          { train: pairedRatio(s, 'trainImgPerSec'), infer: pairedRatio(s, 'inferImgPerSec'), peakRss: pairedRatio(s, 'peakRssMiB') },
        ]),
    );
    const label = precisions.length > 1 || precision !== 'fp32' ? `${c.label} ${precision}` : c.label;
    return { case: c.id, precision, label, sides: bySide, ratios };
  });
  // bf16 against fp32 on each side: per round (the two ran in the same round), then the median.
  const speedups =
    precisions.includes('bf16') && precisions.includes('fp32')
      ? cases.map((c) => {
          const ratio = (side: Side, key: 'trainImgPerSec' | 'inferImgPerSec'): number =>
            median(
              Array.from({ length: rounds }, (_, round) => {
                const at = (p: Precision) => runs.find((r) => r.case === c.id && r.precision === p && r.side === side && r.round === round);
                const [bf16, fp32] = [at('bf16'), at('fp32')];
                return bf16 && fp32 ? bf16[key] / fp32[key] : Number.NaN;
              }),
            );
          return {
            case: c.id,
            label: c.label,
            sides: Object.fromEntries(
              sides.map((side) => [side, { train: ratio(side, 'trainImgPerSec'), infer: ratio(side, 'inferImgPerSec') }]),
            ),
          };
        })
      : [];

  const steps = `${warmupSteps} warm-up + ${timedSteps} timed steps`;
  const batches = batchRange ? `batch sizes ${batchRange.join('-')} at random (inference batch ${batch})` : `batch ${batch}`;
  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const lines: string[] = [];
  lines.push(
    `Engine benchmark: ${batches}, ${threads} threads, Adam, synthetic data, ${steps}, ` +
      `${rounds} rounds alternating (ABBA); medians. OMP_WAIT_POLICY: ${ompWaitPolicy ?? 'unset'}; ${load}.`,
    '',
    '| model | side | train img/s | infer img/s | peak RSS MiB | train CPU ms/img | Adam step ms | faulted in training MiB | ' +
      'cache hits / misses, peak live MiB | runs (train / infer img/s) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  );
  const bold = (ratio: number): string => `**${fmt(ratio, 2)}**`;
  for (const s of summary) {
    for (const side of sides) {
      const v = s.sides[side];
      const sideRuns = `${v.trainRuns.map((x) => fmt(x)).join(', ')} / ${v.inferRuns.map((x) => fmt(x)).join(', ')}`;
      const cacheCell = Number.isFinite(v.cacheHits) ? `${fmt(v.cacheHits, 0)} / ${fmt(v.cacheMisses, 0)}, ${fmt(v.peakLiveMiB, 0)}` : '';
      lines.push(
        `| ${s.label} | ${SIDE_LABEL[side]} | ${fmt(v.trainImgPerSec)} | ${fmt(v.inferImgPerSec)} | ${fmt(v.peakRssMiB, 0)} | ` +
          `${fmt(v.trainCpuPerImageMs)} | ${fmt(v.optimizerStepMs)} | ${fmt(v.trainFaultedMiB, 0)} | ${cacheCell} | ${sideRuns} |`,
      );
    }
    for (const [side, r] of Object.entries(s.ratios)) {
      lines.push(
        `| ${s.label} | **ratio ${side}/peer** | ${bold(r.train)} | ${bold(r.infer)} | ${bold(r.peakRss)} | | | | | ` +
          'median of per-round ratios |',
      );
    }
  }
  if (speedups.length > 0) {
    lines.push('', '| model | side | bf16/fp32 train speed | bf16/fp32 infer speed |', '| --- | --- | ---: | ---: |');
    for (const s of speedups) {
      for (const side of sides)
        lines.push(`| ${s.label} | ${SIDE_LABEL[side]} | ${bold(s.sides[side]!.train)} | ${bold(s.sides[side]!.infer)} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  const out = resolve(repoRoot, args.get('out') ?? 'bench/engine/results.json');
  writeResults(out, 'engine', startLoad, {
    settings: {
      quick,
      rounds,
      threads,
      batch,
      batchRange: batchRange ?? null,
      stepArgs,
      sides,
      precisions,
      ompWaitPolicy: ompWaitPolicy ?? null,
    },
    summary: { cases: summary, speedups },
    runs,
  });
}

runMain(main);
