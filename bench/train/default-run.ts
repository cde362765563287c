// The default `train` run (what `npm start` runs) two ways, side by side: its ensemble members
// one after another in one process on every core's thread (`--nproc 1`), and at once, one process
// per member (the default on 2 or more cores: src/cli/train/launch.ts). The whole command is timed
// under GNU time: wall seconds, CPU seconds of the process tree (user + system; the launcher waits
// for its ranks, so theirs are included) and the largest process's peak RSS. Sides alternate in
// ABBA order with fewer epochs than the recipe's (--epochs), so a round takes minutes on a loaded
// machine; the full run's idle wall time is predicted from the CPU seconds (BENCHMARKS.md). Needs
// `npm run build`. Prints a markdown table, writes bench/train/results-default-run.json.
//
//   npx tsx bench/train/default-run.ts [--epochs 3] [--rounds 2] [--data-dir ../shared/data] [--out file]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fmt, intArg, median, parseArgs, repoRoot, runMain, writeResults } from '../common.js';

type Side = 'sequential' | 'concurrent';
const SIDE_FLAGS: Record<Side, string[]> = { sequential: ['--nproc', '1'], concurrent: [] };
const SIDE_LABEL: Record<Side, string> = {
  sequential: 'members one after another, one process (`--nproc 1`)',
  concurrent: 'members at once, one process each (the default)',
};

interface Run {
  side: Side;
  round: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** `metrics.json` `seconds`: training alone, summed over the members. */
  trainSeconds: number;
  valAuc: number;
  loadBefore: number;
}

/** Runs the whole `train` command under GNU time in a fresh folder; returns its figures. */
function timeTrain(side: Side, epochs: number, dataDir: string): Omit<Run, 'round' | 'loadBefore'> {
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-default-run-'));
  try {
    const out = join(work, 'run');
    const timing = join(work, 'time.txt');
    const args = ['train', '--epochs', String(epochs), '--data-dir', dataDir, '--out', out, ...SIDE_FLAGS[side]];
    const result = spawnSync(
      '/usr/bin/time',
      ['-f', '%e %U %S %M', '-o', timing, process.execPath, join(repoRoot, 'bin/retinagrade.js'), ...args],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, CI: '1' },
      },
    );
    if (result.status !== 0) throw new Error(`train ${args.join(' ')} exited with ${result.status}:\n${result.stderr.slice(-2000)}`);
    const [wall, user, system, rssKiB] = readFileSync(timing, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { seconds: number; val: { auc: number } };
    return {
      side,
      wallSeconds: wall!,
      cpuSeconds: user! + system!,
      peakRssMiB: rssKiB! / 1024,
      trainSeconds: metrics.seconds,
      valAuc: metrics.val.auc,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!;
  const args = parseArgs(process.argv.slice(2));
  const epochs = intArg(args, 'epochs', 3);
  const rounds = intArg(args, 'rounds', 2);
  const dataDir = resolve(args.get('data-dir') ?? process.env.MEDMNIST_DIR ?? join(repoRoot, '../shared/data'));
  const sides: Side[] = ['sequential', 'concurrent'];
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const loadBefore = loadavg()[0]!;
      const run = { ...timeTrain(side, epochs, dataDir), round, loadBefore };
      runs.push(run);
      process.stderr.write(
        `[default-run] round ${round + 1}/${rounds} ${side}: ${fmt(run.wallSeconds)} s wall, ${fmt(run.cpuSeconds)} CPU s, ` +
          `peak RSS ${fmt(run.peakRssMiB, 0)} MiB, load ${fmt(loadBefore, 2)}\n`,
      );
    }
  }

  const of = (side: Side) => runs.filter((r) => r.side === side);
  const perRound = (value: (r: Run) => number): number =>
    median(
      Array.from({ length: rounds }, (_, round) => {
        const inRound = (side: Side) => runs.find((r) => r.side === side && r.round === round)!;
        return value(inRound('concurrent')) / value(inRound('sequential'));
      }),
    );
  const summary = {
    sides: Object.fromEntries(
      sides.map((side) => [
        side,
        {
          wallSeconds: median(of(side).map((r) => r.wallSeconds)),
          cpuSeconds: median(of(side).map((r) => r.cpuSeconds)),
          peakRssMiB: median(of(side).map((r) => r.peakRssMiB)),
          valAuc: of(side).map((r) => r.valAuc),
        },
      ]),
    ),
    ratios: { wall: perRound((r) => r.wallSeconds), cpu: perRound((r) => r.cpuSeconds) },
  };

  const load = `load average ${fmt(startLoad, 2)} at start, ${fmt(loadavg()[0]!, 2)} at end`;
  const lines = [
    `The default run at --epochs ${epochs}, ${availableParallelism()} cores, ${rounds} rounds alternating (ABBA); medians; ${load}.`,
    '',
    '| side | wall s | CPU s | peak RSS MiB (largest process) | val AUC per run | runs wall s |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...sides.map((side) => {
      const v = summary.sides[side]!;
      const walls = of(side).map((r) => fmt(r.wallSeconds));
      const aucs = v.valAuc.map((a) => fmt(a, 3));
      const figures = [fmt(v.wallSeconds), fmt(v.cpuSeconds), fmt(v.peakRssMiB, 0), aucs.join(', '), walls.join(', ')];
      return `| ${SIDE_LABEL[side]} | ${figures.join(' | ')} |`;
    }),
    `| **ratio concurrent/sequential** | **${fmt(summary.ratios.wall, 2)}** | **${fmt(summary.ratios.cpu, 2)}** | | | ` +
      'median of per-round ratios |',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const out = resolve(repoRoot, args.get('out') ?? 'bench/train/results-default-run.json');
  writeResults(out, 'default-run', startLoad, { settings: { epochs, rounds, dataDir }, summary, runs });
}

runMain(main);
