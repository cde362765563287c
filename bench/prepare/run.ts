// bench/prepare: photographs per second of `prepare` at 224 px from 2000x2000 JPEGs (RetinaMNIST
// images upscaled inside a round field of view, as in the tests), ours at several concurrencies
// against the PIL peer (one process per core), in alternating order, each run in its own child.
//   npx tsx bench/prepare/run.ts [--photos 200] [--rounds 2] [--concurrency 1,2,4,8] [--out file]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportImage, gradesInTurn } from '../../test/data/prepare/make-sources.js';
import { PEER_PYTHON, fmt, intArg, median, oursCommand, parseArgs, runChild, runMain, writeResults } from '../common.js';

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const photos = intArg(args, 'photos', 200);
  const rounds = intArg(args, 'rounds', 2);
  const concurrencies = (args.get('concurrency') ?? '1,2,4,8').split(',').map(Number);
  const out = args.get('out') ?? join(import.meta.dirname, 'results.json');
  const startLoad = loadavg()[0]!;
  const work = mkdtempSync(join(tmpdir(), 'retinagrade-bench-prepare-'));
  const src = join(work, 'photos');
  const indices = gradesInTurn(photos, 0);
  for (const [k, index] of indices.entries()) await exportImage(join(src, String(k % 5), `photo${k}.jpg`), index, 2000, 'jpeg');
  process.stderr.write(`[prepare] ${photos} photographs of 2000x2000 in ${src}; load ${fmt(startLoad, 2)}\n`);

  const sides: { name: string; concurrency?: number }[] = [
    { name: 'peer' },
    ...concurrencies.map((c) => ({ name: `ours-c${c}`, concurrency: c })),
  ];
  const runs: { side: string; round: number; per_second: number; load: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const target = join(work, `${side.name}-${round}`);
      const result =
        side.concurrency === undefined
          ? await runChild(PEER_PYTHON, [join(import.meta.dirname, 'peer.py'), '--src', src, '--out', `${target}.npy`])
          : await runChild(
              ...oursCommand('bench/prepare/ours.ts', ['--src', src, '--out', target, '--concurrency', String(side.concurrency)]),
            );
      const perSecond = Number(result.json.per_second);
      runs.push({ side: side.name, round, per_second: perSecond, load: loadavg()[0]! });
      process.stderr.write(`[prepare] round ${round + 1} ${side.name}: ${fmt(perSecond)} photographs/s (load ${fmt(loadavg()[0]!, 2)})\n`);
      rmSync(target, { recursive: true, force: true });
      rmSync(`${target}.npy`, { force: true });
    }
  }
  const summary = sides.map((side) => {
    const own = runs.filter((r) => r.side === side.name);
    const ratios = own.map((r) => r.per_second / runs.find((p) => p.side === 'peer' && p.round === r.round)!.per_second);
    return { side: side.name, per_second: median(own.map((r) => r.per_second)), ratio_to_peer: median(ratios) };
  });
  for (const s of summary)
    process.stdout.write(`${s.side.padEnd(9)} ${fmt(s.per_second)} photographs/s  x${fmt(s.ratio_to_peer, 2)} of peer\n`);
  writeResults(out, 'prepare', startLoad, {
    settings: { photos, rounds, concurrencies, size: 224, source: '2000x2000 JPEG' },
    summary,
    runs,
  });
  rmSync(work, { recursive: true, force: true });
});
