// A seed ensemble: K models of one architecture, trained from different seeds, whose class
// probabilities are averaged. Averaging cancels much of the seed-to-seed variance that 1,080
// training images leave in a single model (RESULTS.md measures it on validation).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type FeatureClassifier, type FrozenFeatures } from '../nn/index.js';
import type { Objective } from '../nn/index.js';

/** The smallest probability whose log an ensemble outputs (keeps log(0) out of losses and metrics). */
const MIN_PROBABILITY = 1e-12;

/**
 * Outputs log of the members' mean probability per class, so that a softmax of the output is that
 * mean (`LogProbabilityObjective` reads it). Members are children `member0`, `member1`, ..., so
 * the state dict holds every member's weights under its prefix.
 */
export class Ensemble extends Module implements FeatureClassifier {
  readonly members: FeatureClassifier[];

  /** `memberObjective` turns one member's outputs into class probabilities. */
  constructor(
    members: FeatureClassifier[],
    readonly memberObjective: Objective,
  ) {
    super();
    if (members.length === 0) throw new Error('an ensemble needs at least one member');
    this.members = members.map((m, k) => this.child(`member${k}`, m));
  }

  forward(x: Tensor): Tensor {
    return this.meanLogProbability(this.members.map((m) => () => m.forward(x)));
  }

  /** The members' feature maps side by side on the channel axis (Grad-CAM weighs all of them). */
  features(x: Tensor): Tensor {
    return torch.tidy(() =>
      torch.cat(
        this.members.map((m) => m.features(x)),
        1,
      ),
    );
  }

  /** The members' frozen extractors side by side, when every member has one. */
  frozenFeatures(): FrozenFeatures | undefined {
    const frozen: FrozenFeatures[] = [];
    for (const member of this.members) {
      const f = member.frozenFeatures?.();
      if (!f) {
        for (const made of frozen) made.dispose();
        return undefined;
      }
      frozen.push(f);
    }
    return {
      features: (x) =>
        torch.tidy(() =>
          torch.cat(
            frozen.map((f) => f.features(x)),
            1,
          ),
        ),
      dispose: () => {
        for (const f of frozen) f.dispose();
      },
    };
  }

  classify(features: Tensor): Tensor {
    const channels = features.shape[1]! / this.members.length;
    return this.meanLogProbability(this.members.map((m, k) => () => m.classify(features.slice(1, k * channels, (k + 1) * channels))));
  }

  private meanLogProbability(memberOutputs: (() => Tensor)[]): Tensor {
    return torch.tidy(() => {
      let sum: Tensor | undefined;
      for (const output of memberOutputs) {
        const p = this.memberObjective.probabilities(output());
        sum = sum ? sum.add(p) : p;
      }
      return sum!.div(memberOutputs.length).clamp(MIN_PROBABILITY).log();
    });
  }
}
