// Finds the folder holding the MedMNIST files and the file for one dataset and size.
// Order: an explicit --data-dir, then $MEDMNIST_DIR, then ~/.medmnist (the medmnist package's default).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { getDatasetFile } from './registry.js';

export interface LocateOptions {
  /** Explicit folder, e.g. from --data-dir. */
  dataDir?: string;
  /** Defaults to process.env; injectable for tests. */
  env?: Record<string, string | undefined>;
  /** Defaults to os.homedir(); injectable for tests. */
  homeDir?: string;
}

export interface DataDirCandidate {
  dir: string;
  /** Why this folder is searched, for error messages. */
  source: '--data-dir' | 'MEDMNIST_DIR' | 'default';
}

export function dataDirCandidates(options: LocateOptions = {}): DataDirCandidate[] {
  const env = options.env ?? process.env;
  const candidates: DataDirCandidate[] = [];
  if (options.dataDir) candidates.push({ dir: resolve(options.dataDir), source: '--data-dir' });
  if (env.MEDMNIST_DIR) candidates.push({ dir: resolve(env.MEDMNIST_DIR), source: 'MEDMNIST_DIR' });
  candidates.push({ dir: join(options.homeDir ?? homedir(), '.medmnist'), source: 'default' });
  return candidates;
}

/** The folder where a download should go: the first candidate, whether or not it exists yet. */
export function defaultDataDir(options: LocateOptions = {}): string {
  return dataDirCandidates(options)[0]!.dir;
}

/** Path of the dataset's .npz for `size`, from the first candidate folder that has it. */
export function locateDatasetFile(dataset: string, size: number, options: LocateOptions = {}): string {
  const { fileName, url, md5 } = getDatasetFile(dataset, size);
  const candidates = dataDirCandidates(options);
  for (const { dir } of candidates) {
    const path = join(dir, fileName);
    if (existsSync(path)) return path;
  }
  const looked = candidates.map(({ dir, source }) => `  ${dir} (${source})`).join('\n');
  throw new UserError(
    `${fileName} (${dataset} at ${size}x${size}) not found. Looked in:\n${looked}\n` +
      `Get it with: retinagrade download --dataset ${dataset} --size ${size}\n` +
      `or by hand: download ${url}\n` +
      `  (md5 ${md5 ?? 'not recorded'}) and put it in ${candidates[0]!.dir}`,
  );
}
