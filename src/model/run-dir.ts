// The run directory: one folder per run holding everything it produced. Files are replaced
// atomically (temp file, fsync, rename) so an interrupted run never leaves a half-written file.
import { accessSync, appendFileSync, constants, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFailure, writeFileAtomic } from '../io/atomic.js';
import { MAX_JSON_BYTES, readRegularFileSync } from '../io/regular-file.js';
import { UserError } from '../errors.js';

export const RUN_FILES = {
  config: 'config.json',
  log: 'log.jsonl',
  best: 'best.safetensors',
  /** Weights, optimizer state and the loop's state (in the metadata), for --resume. */
  checkpoint: 'checkpoint.safetensors',
  /** Fitted on validation after training: temperature, operating points, uncertainty threshold (model/run-calibration.ts). */
  calibration: 'calibration.json',
  /** The gate that refuses what is not a gradable fundus photograph, fitted after training (model/gradability.ts). */
  gradability: 'gradability.safetensors',
  metrics: 'metrics.json',
  predictions: 'predictions.csv',
  /** What the model is, how it did, and what it must not be used for (src/train/model-card.ts). */
  card: 'MODEL_CARD.md',
  /** Figures, charts and the model card in one self-contained page (src/report/). */
  report: 'report.html',
} as const;

/** Where an ensemble keeps its members, each a run directory of its own. */
export const MEMBERS_DIR = 'members';

/** The metadata key of the training loop's state (JSON) in checkpoint.safetensors. */
export const CHECKPOINT_STATE_KEY = 'retinagrade_state';

export class RunDir {
  constructor(readonly path: string) {}

  /** Makes the folder, with a clear error when the path is taken by a file or not writable. */
  create(): void {
    try {
      mkdirSync(this.path, { recursive: true });
      accessSync(this.path, constants.W_OK);
    } catch (error) {
      throw new UserError(`cannot use ${this.path} as a run directory (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  }
  /** The files and folders of a run that are here: what clear() would remove. */
  runFilesPresent(): string[] {
    return [...Object.values(RUN_FILES), MEMBERS_DIR].filter((name) => existsSync(join(this.path, name)));
  }
  /** Removes every file a run writes (a fresh start in a used folder). */
  clear(): void {
    for (const name of Object.values(RUN_FILES)) rmSync(join(this.path, name), { force: true });
    rmSync(join(this.path, MEMBERS_DIR), { recursive: true, force: true });
  }
  /** The run directory of an ensemble's member k. */
  member(k: number): RunDir {
    return new RunDir(join(this.path, MEMBERS_DIR, String(k)));
  }
  /** Rewrites this (ensemble) run's log as its members' logs, each line marked with its member. */
  writeMemberLog(members: number): void {
    const lines: string[] = [];
    for (let k = 0; k < members; k++) {
      const member = this.member(k);
      if (!member.has('log')) break;
      for (const line of readFileSync(member.file('log'), 'utf8').split('\n').filter(Boolean)) {
        lines.push(`${JSON.stringify({ member: k, ...(JSON.parse(line) as object) })}\n`);
      }
    }
    writeFileAtomic(this.file('log'), lines.join(''));
  }
  file(name: keyof typeof RUN_FILES): string {
    return join(this.path, RUN_FILES[name]);
  }
  has(name: keyof typeof RUN_FILES): boolean {
    return existsSync(this.file(name));
  }
  writeJson(name: keyof typeof RUN_FILES, value: unknown): void {
    writeFileAtomic(this.file(name), `${JSON.stringify(value, null, 2)}\n`);
  }
  readJson<T>(name: keyof typeof RUN_FILES): T {
    const path = this.file(name);
    try {
      return JSON.parse(readRegularFileSync(path, MAX_JSON_BYTES, 'a JSON file').toString('utf8')) as T;
    } catch (error) {
      throw new Error(`cannot read ${path}: ${error instanceof Error ? error.message : error}`);
    }
  }
  appendLog(entry: object): void {
    try {
      appendFileSync(this.file('log'), `${JSON.stringify(entry)}\n`);
    } catch (error) {
      throw writeFailure(this.file('log'), error);
    }
  }
  /** Keeps the first `epochs` log lines: a resumed run rewrites the epochs it repeats. */
  truncateLog(epochs: number): void {
    if (!this.has('log')) return;
    const kept = readFileSync(this.file('log'), 'utf8').split('\n').filter(Boolean).slice(0, epochs);
    writeFileAtomic(this.file('log'), kept.map((l) => `${l}\n`).join(''));
  }
}
