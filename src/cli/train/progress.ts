// Progress for long work: a bar with rate and ETA on a terminal, nothing per step in logs (the
// per-epoch summary lines are the log there), so CI output stays readable.
import cliProgress from 'cli-progress';
import type { Progress } from '../../train/loop.js';

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress | undefined {
  if (!stream.isTTY || process.env.CI) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{label} [{bar}] {value}/{total} | {rate} batches/s | ETA {eta_formatted} | loss {loss}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = 0;
  let label = '';
  return {
    start(nextLabel, total) {
      label = nextLabel;
      started = performance.now();
      bar.start(total, 0, { label, rate: '-', loss: '-' });
    },
    tick(values = {}) {
      const done = bar.getProgress() * bar.getTotal() + 1;
      const rate = (done / ((performance.now() - started) / 1000)).toFixed(1);
      bar.increment(1, { label, rate, ...values });
    },
    stop() {
      bar.stop();
    },
  };
}
