// Our side of bench/prepare: prepareDataset on a folder of grade folders, timed from the call to
// the finished dataset.json. Prints one JSON line: photographs, seconds, photographs per second.
import { prepareDataset } from '../../src/data/prepare/prepare.js';
import { intArg, parseArgs, runMain } from '../common.js';

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const { card } = await prepareDataset({
    source: args.get('src')!,
    out: args.get('out')!,
    size: intArg(args, 'size', 224),
    concurrency: intArg(args, 'concurrency', 4),
  });
  const seconds = (performance.now() - started) / 1000;
  const photos = card.splits.train.count + card.splits.val.count + card.splits.test.count + card.skipped.length;
  process.stdout.write(`${JSON.stringify({ photos, seconds, per_second: photos / seconds })}\n`);
});
