// Turns `train` flags, an optional --config file and a recipe into one validated RunConfig.
// Precedence, lowest first: schema defaults, the recipe, the config file, the flags.
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { MAX_JSON_BYTES, readRegularFileSync } from '../../io/regular-file.js';
import { RunConfigSchema, type RunConfig } from '../../train/config.js';
import { RECIPES, RECIPE_NAMES, type RecipeName } from '../../train/recipes.js';

export interface TrainFlags {
  config?: string;
  data?: string;
  init?: string;
  recipe?: string;
  model?: string;
  width?: number;
  dropout?: number;
  size?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  optimizer?: string;
  schedule?: string;
  loss?: string;
  classWeights?: string;
  labelSmoothing?: number;
  sampler?: string;
  augment?: boolean;
  ema?: number;
  ensemble?: number;
  selectOn?: string;
  patience?: number;
  seed?: number;
  threads?: number;
}

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

function flagsToConfig(f: TrainFlags): Plain {
  return {
    data: f.data,
    init: f.init,
    size: f.size,
    epochs: f.epochs,
    batchSize: f.batchSize,
    sampler: f.sampler,
    augment: f.augment === false ? false : undefined,
    ema: f.ema,
    ensemble: f.ensemble,
    selectOn: f.selectOn,
    patience: f.patience,
    seed: f.seed,
    threads: f.threads,
    model: { name: f.model, width: f.width, dropout: f.dropout },
    loss: { kind: f.loss, classWeights: f.classWeights, labelSmoothing: f.labelSmoothing },
    optimizer: { name: f.optimizer, lr: f.lr, weightDecay: f.weightDecay },
    schedule: { name: f.schedule },
  };
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

export function resolveRunConfig(flags: TrainFlags): RunConfig {
  const recipe = (flags.recipe ?? 'default') as RecipeName;
  if (!RECIPE_NAMES.includes(recipe)) {
    throw new UserError(`unknown recipe '${flags.recipe}' (expected one of ${RECIPE_NAMES.join(', ')})`);
  }
  let merged = layer({ recipe }, RECIPES[recipe] as Plain);
  if (flags.config) merged = layer(merged, readConfigFile(flags.config));
  merged = layer(merged, flagsToConfig(flags));
  const parsed = RunConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const where = flags.config ? ` (flags and ${flags.config})` : '';
    throw new UserError(`invalid run configuration${where}:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
