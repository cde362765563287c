// Runs the fuzz suite's targets (test/fuzz/targets.ts) for `--seconds` each from `--seed` and
// prints one JSON tally per target: inputs tried, outcomes (correct, clean error, crash, hang,
// silently wrong), this process's peak RSS, and the first failures if any. Exit code 1 on any
// crash, hang or silently wrong answer.
//
//   npx tsx scripts/reliability/fuzz.ts --seconds 30 --seed 1
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' }, seed: { type: 'string', default: '1' } } });
// The harness reads its seed from the environment when it is first imported.
process.env.RETINAGRADE_FUZZ_SEED = values.seed;
const { fuzzEvaluate, fuzzNpz, fuzzPredict, fuzzServer } = await import('../../test/fuzz/targets.js');

let failed = false;
for (const target of [fuzzNpz, fuzzPredict, fuzzServer, fuzzEvaluate]) {
  const tally = await target(Number(values.seconds));
  failed ||= tally.outcomes.crash + tally.outcomes.hang + tally.outcomes['silently wrong'] > 0 || tally.failures.length > 0;
  console.log(JSON.stringify(tally));
}
console.log(JSON.stringify({ peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) }));
process.exitCode = failed ? 1 : 0;
