// A model of data-parallel scale, from measurements on this machine: allreduce time on loopback
// for 2 and 4 ranks at several message sizes up to ResNet-18's gradients (11.2M fp32 = 45 MB), and
// ResNet-18's training compute per image at 224 and 512 px; from those and the ring-allreduce cost
// model, the predicted epoch time and scaling efficiency of EyePACS (88,000 photographs) on 8, 32
// and 128 machines at 10 and 100 Gb/s. Prints markdown tables, writes bench/distributed/results-scale.json.
//
//   npx tsx bench/distributed/scale-model.ts [--ranks 2,4] [--reps 5] [--compute-sizes 224,512]
//        [--compute-batch 4] [--threads 2] [--machine-batch 32] [--out bench/distributed/results-scale.json]
//
// The model (one process per machine, each machine like this one):
//   allreduce of M bytes over P ranks, ring:  T(P, M) = 2(P-1) a + 2(P-1)/P * M * (g + 1/BW)
//     a: per-message latency, g: per-byte local cost (copies and sums), both fitted by least squares
//     to the loopback measurements; BW: the network's bandwidth (loopback has no wire: BW infinite).
//   epoch on P machines, b images per machine per step, t seconds of compute per image (CPU
//   seconds per image over the threads: the wall time of an idle machine like this one):
//     steps S = ceil(N / (b P));  no overlap (ours: allreduce after backward):  E = S (b t + T(P, M))
//     full overlap (a bound for DDP's bucketed overlap):  E = S max(b t, T(P, M))
//   scaling efficiency = N t / (P E): the one-machine epoch over P times the P-machine one.
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { NUM_GRADES } from '../../src/data/grades.js';
import { ModelConfigSchema, createModel } from '../../src/nn/index.js';
import { freePort } from '../../test/distributed/free-port.js';
import { fmt, intArg, oursCommand, parseArgs, repoRoot, runChild, runMain, writeResults } from '../common.js';

const EYEPACS_IMAGES = 88_000;
const MACHINES = [8, 32, 128];
const NETWORKS_GBPS = [10, 100];
/** ResNet-18 as we build it at 224 px (standard stem, 5-grade head): 11.2M parameters. */
const RESNET18_PARAMETERS = createModel(
  ModelConfigSchema.parse({ name: 'resnet18', inputSize: 224, inChannels: 3, numClasses: NUM_GRADES }),
).parameterCount();
const MESSAGE_ELEMENTS = [256, 16_384, 262_144, 1_048_576, 4_194_304, RESNET18_PARAMETERS];

interface Measured {
  worldSize: number;
  elements: number;
  bytes: number;
  seconds: number;
}

async function measureAllreduce(worldSize: number, reps: number): Promise<Measured[]> {
  const port = String(await freePort());
  const [command, args] = oursCommand('bench/distributed/allreduce.ts', ['--elements', MESSAGE_ELEMENTS.join(','), '--reps', String(reps)]);
  const ranks = Array.from({ length: worldSize }, (_, rank) =>
    runChild(command, args, {
      RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: port,
      RETINAGRADE_THREADS: '1',
    }),
  );
  const { json } = (await Promise.all(ranks))[0]!;
  return (json.results as Omit<Measured, 'worldSize'>[]).map((r) => ({ worldSize, ...r }));
}

/** Least squares of t = 2(W-1) a + 2(W-1)/W M g over the measurements: [a, g]. */
function fitRing(measured: Measured[]): { latency: number; secondsPerByte: number } {
  // Normal equations for t = a x1 + g x2, x1 = 2(W-1), x2 = 2(W-1)/W M, each point weighted by 1/t
  // so that small and large messages count alike (relative error).
  let s11 = 0;
  let s12 = 0;
  let s22 = 0;
  let s1t = 0;
  let s2t = 0;
  for (const { worldSize: w, bytes, seconds } of measured) {
    const x1 = (2 * (w - 1)) / seconds;
    const x2 = ((2 * (w - 1)) / w) * (bytes / seconds);
    s11 += x1 * x1;
    s12 += x1 * x2;
    s22 += x2 * x2;
    s1t += x1;
    s2t += x2;
  }
  const det = s11 * s22 - s12 * s12;
  return { latency: (s1t * s22 - s2t * s12) / det, secondsPerByte: (s11 * s2t - s12 * s1t) / det };
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!;
  const args = parseArgs(process.argv.slice(2));
  const rankCounts = (args.get('ranks') ?? '2,4').split(',').map(Number);
  const reps = intArg(args, 'reps', 5);
  const computeSizes = (args.get('compute-sizes') ?? '224,512').split(',').map(Number);
  const computeBatch = intArg(args, 'compute-batch', 4);
  const threads = intArg(args, 'threads', 2);
  const machineBatch = intArg(args, 'machine-batch', 32);

  const measured: Measured[] = [];
  for (const worldSize of rankCounts) {
    const rows = await measureAllreduce(worldSize, reps);
    measured.push(...rows);
    for (const r of rows) process.stderr.write(`[scale] ${worldSize} ranks, ${fmt(r.bytes / 1e6, 3)} MB: ${fmt(r.seconds * 1000, 2)} ms\n`);
  }
  const { latency, secondsPerByte } = fitRing(measured);
  process.stderr.write(`[scale] ring fit: a = ${fmt(latency * 1e6, 1)} us, g = ${fmt(secondsPerByte * 1e9, 3)} ns per byte\n`);

  // The model's compute per image: CPU seconds over the threads, i.e. the wall time of an idle
  // machine like this one if its threads scaled perfectly. (Wall time on a shared machine counts
  // the other workers' share too; it is printed beside it.)
  const compute: { size: number; secondsPerImage: number; wallSecondsPerImage: number }[] = [];
  for (const size of computeSizes) {
    const [command, commandArgs] = oursCommand('bench/distributed/compute.ts', [
      '--size',
      String(size),
      '--batch',
      String(computeBatch),
      '--threads',
      String(threads),
    ]);
    const { json } = await runChild(command, commandArgs, { RETINAGRADE_THREADS: String(threads) });
    const secondsPerImage = (json.cpuSecondsPerImage as number) / threads;
    const wallSecondsPerImage = json.secondsPerImage as number;
    compute.push({ size, secondsPerImage, wallSecondsPerImage });
    process.stderr.write(
      `[scale] ResNet-18 @${size}: ${fmt(secondsPerImage * 1000, 0)} ms per trained image from CPU time ` +
        `(wall ${fmt(wallSecondsPerImage * 1000, 0)} ms)\n`,
    );
  }

  const gradientBytes = RESNET18_PARAMETERS * 4;
  const predictions = compute.flatMap(({ size, secondsPerImage: t }) =>
    NETWORKS_GBPS.flatMap((gbps) =>
      MACHINES.map((p) => {
        const allreduce = 2 * (p - 1) * latency + ((2 * (p - 1)) / p) * gradientBytes * (secondsPerByte + 8 / (gbps * 1e9));
        const steps = Math.ceil(EYEPACS_IMAGES / (machineBatch * p));
        const computePerStep = machineBatch * t;
        const epoch = steps * (computePerStep + allreduce);
        const epochOverlapped = steps * Math.max(computePerStep, allreduce);
        const oneMachine = EYEPACS_IMAGES * t;
        return {
          size,
          gbps,
          machines: p,
          allreduceSeconds: allreduce,
          computeSecondsPerStep: computePerStep,
          epochSeconds: epoch,
          efficiency: oneMachine / (p * epoch),
          epochSecondsOverlapped: epochOverlapped,
          efficiencyOverlapped: oneMachine / (p * epochOverlapped),
        };
      }),
    ),
  );

  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const lines = [
    `Allreduce on loopback (c10d Gloo, sum, fp32, 1 thread per rank, median of ${reps}); ${load}.`,
    '',
    `| message | ${rankCounts.map((w) => `${w} ranks ms`).join(' | ')} |`,
    `| ---: | ${rankCounts.map(() => '---:').join(' | ')} |`,
    ...MESSAGE_ELEMENTS.map((e) => {
      const cells = rankCounts.map((w) => fmt(measured.find((m) => m.worldSize === w && m.elements === e)!.seconds * 1000, 2));
      return `| ${fmt((e * 4) / 1e6, 3)} MB | ${cells.join(' | ')} |`;
    }),
    '',
    `Ring fit: a = ${fmt(latency * 1e6, 1)} us per message, g = ${fmt(secondsPerByte * 1e9, 3)} ns per byte. ` +
      `Compute per trained image (ResNet-18, ${threads} threads, batch ${computeBatch}): ` +
      compute.map((c) => `${fmt(c.secondsPerImage * 1000, 0)} ms at ${c.size} px`).join(', ') +
      ` (CPU seconds / ${threads} threads; wall on this shared machine: ` +
      compute.map((c) => `${fmt(c.wallSecondsPerImage * 1000, 0)} ms`).join(', ') +
      ').',
    '',
    `EyePACS (${EYEPACS_IMAGES} images), ${machineBatch} images per machine per step, ` +
      `ResNet-18 gradients ${fmt(gradientBytes / 1e6, 1)} MB:`,
    '',
    '| px | network | machines | allreduce s/step | compute s/step | epoch min, no overlap | efficiency | ' +
      'epoch min, full overlap | efficiency |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...predictions.map(
      (r) =>
        `| ${r.size} | ${r.gbps} Gb/s | ${r.machines} | ${fmt(r.allreduceSeconds, 3)} | ${fmt(r.computeSecondsPerStep, 2)} | ` +
        `${fmt(r.epochSeconds / 60, 1)} | ${fmt(r.efficiency * 100, 0)}% | ${fmt(r.epochSecondsOverlapped / 60, 1)} | ` +
        `${fmt(r.efficiencyOverlapped * 100, 0)}% |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const out = resolve(repoRoot, args.get('out') ?? 'bench/distributed/results-scale.json');
  writeResults(out, 'scale', startLoad, {
    settings: { rankCounts, reps, computeSizes, computeBatch, threads, machineBatch, parameters: RESNET18_PARAMETERS },
    summary: { latency, secondsPerByte, compute, predictions },
    runs: measured,
  });
}

runMain(main);
