// Downloading the dataset from the command line: the progress bar of `download`, and the flags of
// the commands that read the dataset and fetch it on first use (--no-download, --mirror).
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import type { DownloadProgress, FirstUseOptions } from '../data/download.js';
import { defaultDataDir } from '../data/locate.js';
import { dataDirOption } from './options.js';

export const mirrorOption = (): Option =>
  new Option('--mirror <url>', 'base URL replacing the official Zenodo folder for downloads, e.g. http://host/medmnist');

/** Adds the flags of a command that reads the dataset: where it is, and fetching it when it is missing. */
export function addDataOptions(command: Command): Command {
  return command
    .addOption(dataDirOption())
    .addOption(
      new Option('--no-download', 'refuse instead of downloading the dataset file when it is missing (default: download it, md5-checked)'),
    )
    .addOption(mirrorOption());
}

/** A download bar on a terminal (nothing in logs or with --json); `stop` it when the download ends. */
export function downloadBar(enabled = process.stderr.isTTY && !process.env.CI): {
  onProgress: (progress: DownloadProgress) => void;
  stop: () => void;
} {
  const bar = enabled
    ? new cliProgress.SingleBar({ format: 'download [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta_formatted}' })
    : undefined;
  let started = false;
  return {
    onProgress: ({ bytes, total }) => {
      if (!bar || total === undefined) return;
      if (!started) bar.start(total, bytes);
      started = true;
      bar.update(bytes);
    },
    stop: () => bar?.stop(),
  };
}

/** FirstUseOptions from the flags of a command that reads the dataset. */
export function firstUse(flags: { dataDir?: string; download: boolean; mirror?: string }, bar = downloadBar()): FirstUseOptions {
  return {
    download: flags.download,
    dir: defaultDataDir({ dataDir: flags.dataDir }),
    mirror: flags.mirror,
    onProgress: bar.onProgress,
    say: (line) => process.stderr.write(`retinagrade: ${line}\n`),
  };
}
