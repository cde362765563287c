// A candidate's runs for several seeds: trained into `<out>/<candidate>-s<seed>` when missing
// (resumed when interrupted), read back as metrics.json. Shared by sweep.ts and temperature.ts.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveRunConfig, type TrainFlags } from '../../src/cli/train/config-flags.js';
import type { RunMetrics } from '../../src/model/run-metrics.js';
import { train } from '../../src/train/run.js';
import { CANDIDATES } from './candidates.js';

export interface CandidateRun {
  dir: string;
  seed: number;
  metrics: RunMetrics;
}

export async function candidateRuns(name: string, seeds: number[], out: string, dataDir?: string): Promise<CandidateRun[]> {
  const flags: TrainFlags | undefined = CANDIDATES[name];
  if (!flags) throw new Error(`unknown candidate ${name} (have ${Object.keys(CANDIDATES).join(', ')})`);
  const runs: CandidateRun[] = [];
  for (const seed of seeds) {
    const dir = join(out, `${name}-s${seed}`);
    const metricsFile = join(dir, 'metrics.json');
    if (!existsSync(metricsFile)) {
      process.stderr.write(`training ${name} seed ${seed}\n`);
      const config = resolveRunConfig({ ...flags, seed });
      await train({ config, outDir: dir, dataDir, resume: existsSync(join(dir, 'config.json')) });
    }
    runs.push({ dir, seed, metrics: JSON.parse(readFileSync(metricsFile, 'utf8')) as RunMetrics });
  }
  return runs;
}
