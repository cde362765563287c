// Turns `train` flags, an optional --config file and a recipe (or, on --resume, the run's own
// config.json) into one validated RunConfig, and speaks of its keys the way the user typed them.
// Precedence, lowest first: schema defaults, a prepared dataset's default size, the recipe, the
// config file, the flags.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import { UserError } from '../../errors.js';
import { defaultTrainingSize, readDatasetJson } from '../../data/prepared-dataset.js';
import { MAX_JSON_BYTES, readRegularFileSync } from '../../io/regular-file.js';
import { RUN_FILES } from '../../model/run-dir.js';
import { RunConfigSchema, configOfSaved, type RunConfig } from '../../train/config.js';
import { RECIPES, RECIPE_NAMES, type RecipeName } from '../../train/recipes.js';
import { closestMatch } from '../options.js';

/**
 * The one table between `train` flags and run-config keys: it builds the config from the flags
 * and names a key by its flag in every error. `option` is commander's name for the flag's value.
 */
export const CONFIG_FLAGS = [
  { option: 'recipe', flag: '--recipe', path: ['recipe'] },
  { option: 'data', flag: '--data', path: ['data'] },
  { option: 'init', flag: '--init', path: ['init'] },
  { option: 'arch', flag: '--arch', path: ['model', 'name'] },
  { option: 'width', flag: '--width', path: ['model', 'width'] },
  { option: 'dropout', flag: '--dropout', path: ['model', 'dropout'] },
  { option: 'size', flag: '--size', path: ['size'] },
  { option: 'epochs', flag: '--epochs', path: ['epochs'] },
  { option: 'batchSize', flag: '--batch-size', path: ['batchSize'] },
  { option: 'precision', flag: '--precision', path: ['precision'] },
  { option: 'optimizer', flag: '--optimizer', path: ['optimizer', 'name'] },
  { option: 'lr', flag: '--lr', path: ['optimizer', 'lr'] },
  { option: 'weightDecay', flag: '--weight-decay', path: ['optimizer', 'weightDecay'] },
  { option: 'schedule', flag: '--schedule', path: ['schedule', 'name'] },
  { option: 'loss', flag: '--loss', path: ['loss', 'kind'] },
  { option: 'classWeights', flag: '--class-weights', path: ['loss', 'classWeights'] },
  { option: 'labelSmoothing', flag: '--label-smoothing', path: ['loss', 'labelSmoothing'] },
  { option: 'sampler', flag: '--sampler', path: ['sampler'] },
  { option: 'augment', flag: '--no-augment', path: ['augment'] },
  { option: 'ema', flag: '--ema', path: ['ema'] },
  { option: 'ensemble', flag: '--ensemble', path: ['ensemble'] },
  { option: 'selectOn', flag: '--select-on', path: ['selectOn'] },
  { option: 'patience', flag: '--patience', path: ['patience'] },
  { option: 'seed', flag: '--seed', path: ['seed'] },
  { option: 'syncBatchNorm', flag: '--sync-batch-norm', path: ['syncBatchNorm'] },
  { option: 'threads', flag: '--threads', path: ['threads'] },
] as const;

type ConfigOption = (typeof CONFIG_FLAGS)[number]['option'];
/** The flags the user typed, by commander's option name (--no-augment gives augment: false). */
export type TrainFlags = Partial<Record<ConfigOption, string | number | boolean>> & { config?: string };

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays and other values from `top` replace those of `base`. */
export function layer(base: Plain, top: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(top)) {
    if (value === undefined) continue;
    out[key] = isPlain(value) && isPlain(out[key]) ? layer(out[key] as Plain, value) : value;
  }
  return out;
}

function flagsToConfig(flags: TrainFlags): Plain {
  let config: Plain = {};
  for (const { option, path } of CONFIG_FLAGS) {
    const value = flags[option];
    if (value === undefined) continue;
    config = layer(config, path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as Plain);
  }
  return config;
}

/** A config key as the user knows it: its flag when it has one (`--batch-size (batchSize)`), else its path. */
export function nameOfKey(path: readonly PropertyKey[]): string {
  const dotted = path.map(String).join('.');
  const entry = CONFIG_FLAGS.find((e) => isDeepStrictEqual([...e.path], path.map(String)));
  return entry ? `${entry.flag} (${dotted})` : dotted || 'the configuration';
}

function readConfigFile(path: string): Plain {
  const text = readRegularFileSync(path, MAX_JSON_BYTES, 'a JSON config file').toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isPlain(parsed)) throw new Error('expected a JSON object');
    return parsed;
  } catch (error) {
    throw new UserError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** The keys an object schema accepts at `path` inside RunConfigSchema (wrappers and unions looked through). */
function keysAt(path: readonly PropertyKey[]): string[] {
  const shapeOf = (schema: unknown): Record<string, unknown> | undefined => {
    const s = schema as { shape?: Record<string, unknown>; def?: { innerType?: unknown; options?: unknown[]; in?: unknown } };
    if (s?.shape) return s.shape;
    if (s?.def?.innerType) return shapeOf(s.def.innerType);
    if (s?.def?.in) return shapeOf(s.def.in);
    for (const option of s?.def?.options ?? []) {
      const shape = shapeOf(option);
      if (shape) return shape;
    }
    return undefined;
  };
  let shape = shapeOf(RunConfigSchema);
  for (const key of path) shape = shapeOf(shape?.[String(key)]);
  return Object.keys(shape ?? {});
}

/** One line per problem, naming the flag (or the key) and what it accepts; unknown keys get a suggestion. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const known = keysAt(issue.path);
        return issue.keys
          .map((key) => {
            const near = closestMatch(key, known);
            const where = issue.path.length > 0 ? ` in ${issue.path.join('.')}` : '';
            return `unknown key '${key}'${where}${near ? ` (did you mean '${near}'?)` : ''}; known keys: ${known.join(', ')}`;
          })
          .join('\n');
      }
      return `${nameOfKey(issue.path)}: ${issue.message}`;
    })
    .join('\n');
}

function parseRunConfig(merged: Plain, source: string): RunConfig {
  const parsed = RunConfigSchema.safeParse(merged);
  if (!parsed.success) throw new UserError(`invalid run configuration (${source}):\n${describeIssues(parsed.error)}`);
  return parsed.data;
}

export function resolveRunConfig(flags: TrainFlags): RunConfig {
  const recipe = String(flags.recipe ?? 'default') as RecipeName;
  if (!RECIPE_NAMES.includes(recipe)) {
    throw new UserError(`--recipe '${recipe}' is not a recipe (expected one of ${RECIPE_NAMES.join(', ')})`);
  }
  let merged = layer({ recipe }, RECIPES[recipe] as Plain);
  if (flags.config) merged = layer(merged, readConfigFile(flags.config));
  merged = layer(merged, flagsToConfig(flags));
  // Training on a prepared dataset defaults to the datasheet's 64x64 where its stored size allows.
  if (typeof merged.data === 'string' && merged.size === undefined) merged.size = defaultTrainingSize(readDatasetJson(merged.data).size);
  return parseRunConfig(merged, flags.config ? `flags and ${flags.config}` : 'flags');
}

/** Leaf paths where two JSON values differ (a whole subtree when one side is not an object). */
function differences(a: unknown, b: unknown, path: string[] = []): string[][] {
  if (isPlain(a) && isPlain(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((key) => differences(a[key], b[key], [...path, key]));
  }
  return isDeepStrictEqual(a, b) ? [] : [path];
}

const valueAt = (config: unknown, path: string[]): unknown => path.reduce<unknown>((v, key) => (isPlain(v) ? v[key] : undefined), config);
const shown = (value: unknown): string => (value === undefined ? 'unset' : JSON.stringify(value));

/**
 * The configuration of the run in `outDir`, from its config.json, for `--resume`: flags and a
 * --config file may repeat it (and --threads may change) but not contradict it; each
 * contradiction is named ("--epochs 30 differs from the run's 100"). Undefined when there is no run.
 */
export function resumedRunConfig(outDir: string, flags: TrainFlags): RunConfig | undefined {
  const file = join(outDir, RUN_FILES.config);
  if (!existsSync(file)) return undefined; // train() says there is nothing to resume
  const recorded = parseRunConfig(configOfSaved(readConfigFile(file)), file);
  const asJson = (value: unknown): Plain => JSON.parse(JSON.stringify(value)) as Plain;
  let requested: Plain = asJson(recorded);
  if (flags.config) requested = layer(requested, readConfigFile(flags.config));
  requested = layer(requested, flagsToConfig(flags));
  const contradictions = differences(asJson({ ...recorded, threads: undefined }), { ...asJson(requested), threads: undefined }).map(
    (path) => {
      const entry = CONFIG_FLAGS.find((e) => isDeepStrictEqual([...e.path], path));
      const typed = entry && flags[entry.option] !== undefined;
      const what = typed
        ? `${entry.flag}${entry.option === 'augment' ? '' : ` ${shown(flags[entry.option])}`}`
        : `${path.join('.')} ${shown(valueAt(requested, path))} in ${flags.config}`;
      return `${what} differs from the run's ${shown(valueAt(recorded, path))}`;
    },
  );
  if (contradictions.length > 0) {
    throw new UserError(
      `cannot resume ${outDir}: ${contradictions.join('; ')}. ` +
        `\`retinagrade train --out ${outDir} --resume\` alone continues it as it was configured`,
    );
  }
  return parseRunConfig(requested, `${file} and flags`);
}
