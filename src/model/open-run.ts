// Reopens a run directory's selected model from best.safetensors alone: its metadata names the
// architecture, the objective and the ensemble size, so nothing else in the folder is needed.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { loadSafetensors } from '../io/safetensors.js';
import {
  LogProbabilityObjective,
  LossConfigSchema,
  ModelConfigSchema,
  createModel,
  createObjective,
  renameLegacyKeys,
  type FeatureClassifier,
  type ModelConfig,
  type Objective,
} from '../nn/index.js';
import { resolvePrecision, type Precision, type Tensor } from '../torch/index.js';
import { Ensemble } from './ensemble.js';
import { gateFromTensors, type GradabilityGate } from './gradability.js';
import { RunCalibrationSchema, type RunCalibration } from './run-calibration.js';
import { RunDir } from './run-dir.js';
import { runStatus, type RunStatus } from './run-status.js';

/** What best.safetensors' metadata holds besides the weights (written by train). */
export const WEIGHTS_METADATA = {
  /** The model config as JSON. */
  model: 'model',
  /** The loss kind the model was trained with: how its outputs become probabilities. */
  objective: 'objective',
  /** Members averaged; absent for a single model. */
  ensemble: 'ensemble',
  /** The epoch a single model's weights come from. */
  epoch: 'epoch',
} as const;

export interface OpenedModel {
  run: RunDir;
  modelConfig: ModelConfig;
  /** Members whose probabilities are averaged (1: a single model). */
  ensemble: number;
  /** In eval mode. */
  model: FeatureClassifier;
  objective: Objective;
  /** calibration.json: absent for a run trained before calibration existed (no temperature, no thresholds). */
  calibration?: RunCalibration;
  /** gradability.safetensors: absent for a run trained before it existed (then nothing is refused but what has no disc). */
  gradability?: GradabilityGate;
  /** Set when the run had not finished (opened with allowUnfinished): what the weights are, for every output. */
  unfinished?: string;
  /** The precision the model computes at: the run's (its model config's), or the one asked for, where this CPU has it. */
  precision: Precision;
  /** Why the precision is not the one asked for or trained at (bf16 on a CPU without it). */
  precisionFallback?: string;
}

/** The run's gradability gate, if it has one; a damaged one is a UserError naming it. */
function readGradability(run: RunDir): GradabilityGate | undefined {
  if (!run.has('gradability')) return undefined;
  try {
    const { tensors, metadata } = loadSafetensors(run.file('gradability'));
    return gateFromTensors(tensors, metadata);
  } catch (error) {
    throw new UserError(`${run.file('gradability')} is not a run's gradability gate: ${(error as Error).message}`);
  }
}

/** The run's calibration.json, if it has one; a damaged one is a UserError naming it. */
export function readCalibration(run: RunDir): RunCalibration | undefined {
  if (!run.has('calibration')) return undefined;
  try {
    return RunCalibrationSchema.parse(run.readJson('calibration'));
  } catch (error) {
    const reason = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
    throw new UserError(`${run.file('calibration')} is not a run's calibration: ${reason}`);
  }
}

const MetadataSchema = z.object({
  model: z
    .string()
    .transform((json, ctx) => {
      try {
        return JSON.parse(json) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'the model config is not JSON' });
        return z.NEVER;
      }
    })
    .pipe(ModelConfigSchema),
  objective: LossConfigSchema.shape.kind,
  ensemble: z.coerce.number().int().min(1).max(64).default(1),
});

/** The first tensor holding NaN or an infinity, by name: weights no forward pass can use. */
function nonFiniteTensor(tensors: ReadonlyMap<string, Tensor>): string | undefined {
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    const values = t.data() as Float32Array | Float64Array;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return `${name}[${i}] is ${values[i]}`;
  }
  return undefined;
}

/**
 * What the run's config.json (when there is one) says about the model and the weights disagree
 * on, e.g. an input size: the two files do not belong to the same run.
 */
function configDisagreement(run: RunDir, modelConfig: ModelConfig, ensemble: number): string | undefined {
  if (!run.has('config')) return undefined;
  const config = run.readJson<{ size?: unknown; ensemble?: unknown; model?: { name?: unknown; width?: unknown } }>('config');
  const claims: [string, unknown, unknown][] = [
    ['size', config.size, modelConfig.inputSize],
    ['ensemble', config.ensemble, ensemble],
    ['model.name', config.model?.name, modelConfig.name],
    ['model.width', config.model?.width, modelConfig.width],
  ];
  const differing = claims.filter(([, claimed, actual]) => claimed !== undefined && actual !== undefined && claimed !== actual);
  if (differing.length === 0) return undefined;
  const what = differing.map(([key, claimed, actual]) => `${key} ${JSON.stringify(claimed)} against ${JSON.stringify(actual)}`).join(', ');
  return `${run.file('config')} does not describe the model in ${run.file('best')} (${what}): the files are from different runs`;
}

export interface OpenRunOptions {
  /** Open an unfinished run's best epoch so far instead of refusing it (stated in `unfinished`). */
  allowUnfinished?: boolean;
  /** Compute at this precision instead of the one the run was trained at. */
  precision?: Precision;
}

/** Opens a run directory's model; anything unusable about it is a UserError naming the directory. */
export function openRun(path: string, options: OpenRunOptions = {}): OpenedModel {
  if (existsSync(path) && statSync(path).isFile()) {
    throw new UserError(`${path} is a file: pass the run directory that holds it (${dirname(path)}), not a file in it`);
  }
  const run = new RunDir(path);
  const status = statusOf(run);
  if (status && !status.finished) {
    if (!options.allowUnfinished) {
      throw new UserError(
        `${path} holds an unfinished run (${status.progress}). Finish it with:\n  retinagrade train --out ${status.resumeDir} --resume\n` +
          'or pass --allow-unfinished to use its best epoch so far',
      );
    }
    const members = partialEnsembleMembers(run);
    if (members) return openMembers(run, members, status.progress, options.precision);
  }
  if (!run.has('best')) throw new UserError(`${path} is not a finished run directory: ${run.file('best')} is missing`);
  const calibration = readCalibration(run);
  const gradability = readGradability(run);
  const opened = openWeights(run, run.file('best'), options.precision);
  if (calibration) opened.calibration = calibration;
  if (gradability) opened.gradability = gradability;
  if (status && !status.finished) {
    const weights = opened.epoch === undefined ? 'its best weights so far' : `weights of epoch ${opened.epoch}`;
    opened.unfinished = `unfinished run (${status.progress}): ${weights}, not final`;
  }
  return opened;
}

/** runStatus, with an unreadable config.json or checkpoint reported as the run's problem. */
function statusOf(run: RunDir): RunStatus | undefined {
  try {
    return runStatus(run);
  } catch (error) {
    throw new UserError(`${run.path} is not a usable run: ${(error as Error).message}`);
  }
}

/** An unfinished ensemble without best.safetensors: the run directories of its members that have weights. */
function partialEnsembleMembers(run: RunDir): RunDir[] | undefined {
  if (run.has('best')) return undefined;
  const members: RunDir[] = [];
  for (let k = 0; run.member(k).has('best'); k++) members.push(run.member(k));
  return members.length > 0 ? members : undefined;
}

/** The members trained so far (each at its best epoch so far) as one ensemble. */
function openMembers(run: RunDir, members: RunDir[], progress: string, precision: Precision | undefined): OpenedModel {
  const opened = members.map((member) => openWeights(member, member.file('best'), precision));
  const first = opened[0]!;
  const model = new Ensemble(
    opened.map((member) => member.model),
    first.objective,
  );
  model.eval();
  const epochs = opened.map((member) => member.epoch ?? '?').join(', ');
  return {
    run,
    modelConfig: first.modelConfig,
    ensemble: opened.length,
    model,
    objective: new LogProbabilityObjective(first.modelConfig.numClasses),
    precision: first.precision,
    ...(first.precisionFallback ? { precisionFallback: first.precisionFallback } : {}),
    unfinished: `unfinished ensemble (${progress}): ${opened.length} member(s) at epochs ${epochs}, not final`,
  };
}

/** The model `file` holds, at `requested` precision (default: the one it was trained at) where this CPU has it. */
function openWeights(run: RunDir, file: string, requested: Precision | undefined): OpenedModel & { epoch: string | undefined } {
  const path = run.path;
  try {
    const weights = loadSafetensors(file);
    try {
      const metadata = MetadataSchema.parse(weights.metadata);
      const modelConfig = metadata.model;
      const damaged = nonFiniteTensor(weights.tensors);
      if (damaged) throw new Error(`its weights hold a non-finite value (${damaged}): the model diverged or the file is damaged`);
      const disagreement = configDisagreement(run, modelConfig, metadata.ensemble);
      if (disagreement) throw new UserError(disagreement);
      const memberObjective = createObjective(LossConfigSchema.parse({ kind: metadata.objective }), modelConfig.numClasses);
      const { precision, fallback } = resolvePrecision(requested ?? modelConfig.precision ?? 'fp32');
      const single = metadata.ensemble === 1;
      const model = single
        ? createModel({ ...modelConfig, precision })
        : new Ensemble(
            Array.from({ length: metadata.ensemble }, () => createModel({ ...modelConfig, precision })),
            memberObjective,
          );
      try {
        model.loadStateDict(renameLegacyKeys(weights.tensors));
      } catch (error) {
        model.dispose();
        throw error;
      }
      model.eval();
      const objective = single ? memberObjective : new LogProbabilityObjective(modelConfig.numClasses);
      const epoch = weights.metadata[WEIGHTS_METADATA.epoch];
      const precisionFallback = fallback ? { precisionFallback: fallback } : {};
      return { run, modelConfig, ensemble: metadata.ensemble, model, objective, epoch, precision, ...precisionFallback };
    } finally {
      for (const t of weights.tensors.values()) t.dispose();
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    const reason = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
    throw new UserError(`${path} is not a usable run: ${reason.length > 400 ? `${reason.slice(0, 400)}...` : reason}`);
  }
}
