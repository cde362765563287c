// A run directory holding an untrained model, for tests (and benchmarks) of what uses a run.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData } from '../../src/data/training-data.js';
import { Ensemble } from '../../src/model/ensemble.js';
import { fitGradabilityGate, gradabilityTensors } from '../../src/model/gradability.js';
import { predictSplit } from '../../src/model/inference.js';
import { fitRunCalibration } from '../../src/model/run-calibration.js';
import { RunDir } from '../../src/model/run-dir.js';
import {
  ModelConfigSchema,
  createModel,
  createObjective,
  LossConfigSchema,
  type LossConfig,
  type FeatureClassifier,
  type ModelConfig,
  type Module,
  type Objective,
} from '../../src/nn/index.js';
import * as torch from '../../src/torch/index.js';

export interface UntrainedRunOptions {
  /** Default: a compact CNN at 28 px, width 8. */
  modelConfig?: ModelConfig;
  /** The loss the weights say the model was trained with (default: cross-entropy). */
  loss?: LossConfig;
  /** Written as the run's metrics.json when given. */
  metrics?: object;
  /** Every weight multiplied by this (1e30: finite weights whose outputs overflow). */
  weightScale?: number;
  /**
   * Random batch-norm weights and biases (untrained: 1 and 0), and running statistics taken from
   * these images (N,3,H,W in [-1,1]) in training mode: every layer matters and the probabilities
   * differ between images as a trained model's do, for comparisons with other engines.
   */
  randomNorm?: { seed: number; images: torch.Tensor };
  /**
   * Fit calibration.json and gradability.safetensors on RetinaMNIST in this folder as `train` does
   * after training (same code), so the run is served with the gate and the temperature.
   */
  fitOn?: { dataDir: string };
}

function randomizeNorm(model: Module, { seed, images }: { seed: number; images: torch.Tensor }): void {
  const generator = new torch.Generator(seed);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, t] of model.stateDict()) {
        if (!/(\.bn\d?|downsample\.1)\.(weight|bias)$/.test(name)) continue;
        t.copyInPlace(name.endsWith('weight') ? generator.uniform(t.shape, 0.5, 1.5) : generator.uniform(t.shape, -0.5, 0.5));
      }
      model.train();
      // Momentum 0.1: after 40 passes the initial statistics weigh 0.9^40, about 1.5%.
      for (let pass = 0; pass < 40; pass++) torch.tidy(() => model.forward(images));
      model.eval();
    }),
  );
}

/** What `train` fits after training (src/train/outputs.ts): the temperature and thresholds, and the gradability gate. */
function fitOutputs(run: RunDir, model: FeatureClassifier, objective: Objective, size: number, dataDir: string): void {
  const data = loadRetinaTensors({ dataDir, size });
  run.writeJson('calibration', fitRunCalibration(data.val.labels, predictSplit(model, objective, data.val)));
  const { tensors, metadata } = gradabilityTensors(fitGradabilityGate(model, data.train, data.val));
  saveSafetensors(run.file('gradability'), tensors, metadata);
  for (const t of tensors.values()) t.dispose();
  releaseTrainingData(data);
}

/** A run directory holding an untrained model, or an ensemble of `ensemble` of them. */
export function untrainedRun(ensemble: number, options: UntrainedRunOptions = {}): string {
  const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-untrained-')));
  const modelConfig = options.modelConfig ?? ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 });
  const loss = options.loss ?? LossConfigSchema.parse({});
  const members = Array.from({ length: ensemble }, () => createModel(modelConfig));
  const model = ensemble === 1 ? members[0]! : new Ensemble(members, createObjective(loss, modelConfig.numClasses));
  if (options.randomNorm) randomizeNorm(model, options.randomNorm);
  const state = model.stateDict();
  const scale = options.weightScale;
  const weights = scale === undefined ? state : new Map([...state].map(([name, t]) => [name, t.dtype === 'float32' ? t.mul(scale) : t]));
  saveSafetensors(run.file('best'), weights, {
    model: JSON.stringify(modelConfig),
    objective: loss.kind,
    ensemble: String(ensemble),
  });
  if (options.fitOn) fitOutputs(run, model, createObjective(loss, modelConfig.numClasses), modelConfig.inputSize, options.fitOn.dataDir);
  model.dispose();
  if (options.metrics) run.writeJson('metrics', options.metrics);
  return run.path;
}
