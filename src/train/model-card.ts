// MODEL_CARD.md, written into every finished run directory: what the model is, what it was
// trained and measured on, how well it did, and what it must not be used for (after Mitchell et
// al., "Model Cards for Model Reporting", FAT* 2019).
import { basename } from 'node:path';
import { GRADE_NAMES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import type { Interval, OperatingPointReport } from '../eval/index.js';
import type { SourceLayout } from '../data/prepared-dataset.js';
import { getDataset } from '../data/registry.js';
import type { RunMetrics } from '../model/run-metrics.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import type { RunConfig } from './config.js';

const fixed = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
/** A grade's AUC, '-' for a grade the split lacks. */
const aucText = (auc: number | null | undefined): string => (auc == null ? '-' : fixed(auc));
const withInterval = (x: number, ci: Interval): string => `${fixed(x)} [${fixed(ci.lo)}, ${fixed(ci.hi)}]`;
/** How a prepared dataset's source was laid out (its dataset.json `source.layout`), in words. */
const layoutWords: Record<SourceLayout, string> = {
  'labels-csv': 'photographs with a CSV labels file',
  'labels-excel': 'photographs with an Excel labels file',
  'grade-folders': 'photographs in one folder per grade',
  'medmnist-npz': 'a MedMNIST .npz file',
};
const tableRow = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;

/** The blockquote that opens the card. */
const WARNING = [
  `> **${NOT_FOR_CLINICAL_USE}**`,
  '> This model has not been validated on any patient population. ' +
    'It must not be used to diagnose, screen, triage or treat anyone, nor to decide whether someone',
  '> needs an eye examination.',
].join('\n');

export function modelCard(metrics: RunMetrics, config: RunConfig): string {
  const dataset = getDataset(config.dataset);
  const { test, val } = metrics;
  const { model, data } = metrics;
  const members = metrics.members;
  const architecture =
    `${model.name}${model.width ? `, width ${model.width}` : ''}${model.dropout ? `, dropout ${model.dropout}` : ''}` +
    `${model.stemStride === 2 ? ', stride-2 first convolution' : ''}, ${model.size}x${model.size} RGB input in [-1, 1]`;
  const ensemble = members
    ? `an ensemble of ${members.length} such models (seeds ${members.map((m) => m.seed).join(', ')}), class probabilities averaged`
    : 'a single model';
  const enabledTransforms = config.augment
    ? Object.entries(config.augment)
        .filter(([, v]) => typeof v === 'object' && v !== null && (v as { enabled?: boolean }).enabled)
        .map(([name]) => name)
    : [];
  const augmentation = enabledTransforms.length > 0 ? enabledTransforms.join(', ') : 'none';
  const epochsRun = [metrics.epochs_run].flat();
  const epochs = epochsRun.every((n) => n === config.epochs)
    ? `${config.epochs} epoch${config.epochs === 1 ? '' : 's'}`
    : `up to ${config.epochs} epochs, stopped early after ${config.patience} epochs without improvement ` +
      `(epochs run: ${epochsRun.join(', ')})`;
  const { name: scheduleName, warmupEpochs } = config.schedule;
  const warmup = scheduleName === 'cosine' && warmupEpochs > 0 ? ` with ${warmupEpochs} warm-up epoch${warmupEpochs === 1 ? '' : 's'}` : '';
  const schedule = `${scheduleName} learning-rate schedule${warmup}`;
  const kept = config.ema > 0 ? `an exponential moving average (decay ${config.ema}) of the weights` : 'the weights';
  const upsampling = data.upsampled_from
    ? `, upsampled from ${data.upsampled_from}x${data.upsampled_from} to ${model.size}x${model.size}`
    : '';
  const splitRow = (name: string, f: RunMetrics['val']) =>
    tableRow([
      name,
      withInterval(f.acc, f.ci95.acc),
      withInterval(f.auc, f.ci95.auc),
      withInterval(f.qwk, f.ci95.qwk),
      fixed(f.macro_f1),
      fixed(f.balanced_acc),
      fixed(f.ece),
    ]);
  // The images each split's figures are over (a prepared dataset's splits are not RetinaMNIST's).
  const imagesOf = (f: typeof val): number => f.per_class.reduce((sum, c) => sum + c.support, 0);
  const valRow = splitRow(`validation (${imagesOf(val)})`, val);
  const testRow = splitRow(`test (${imagesOf(test)})`, test);
  const gradeRows = test.per_class.map((c, i) =>
    tableRow([`${i} ${GRADE_NAMES[i]}`, c.support, fixed(c.precision), fixed(c.recall), fixed(c.f1), aucText(test.auc_per_grade[i])]),
  );
  const confusionRows = test.confusion.map((row, t) => tableRow([`${t} ${GRADE_NAMES[t]}`, ...row]));
  const operatingRow = (name: string, split: string, point: OperatingPointReport | undefined) =>
    point === undefined
      ? tableRow([name, split, 'not reported: no image on one side of the cut-off', '', '', '', ''])
      : tableRow([
          name,
          split,
          `${point.positives} / ${point.positives + point.negatives}`,
          withInterval(point.auc, point.ci95.auc),
          fixed(point.threshold),
          withInterval(point.sensitivity, point.ci95.sensitivity),
          withInterval(point.specificity, point.ci95.specificity),
        ]);
  const screeningRows = [
    [`referable (grade >= ${REFERABLE_GRADE})`, 'referable'] as const,
    [`vision-threatening (grade >= ${VISION_THREATENING_GRADE})`, 'vision_threatening'] as const,
  ].flatMap(([name, key]) => [operatingRow(name, 'validation', val[key]), operatingRow(name, 'test', test[key])]);
  const absentNotes = (
    [
      ['Validation', val],
      ['Test', test],
    ] as const
  ).flatMap(([name, f]) => (f.note ? [`- ${name}: ${f.note}.`] : []));
  const { calibration, uncertainty } = metrics;

  const { prepared } = data;
  const dataSection = prepared
    ? `- A dataset prepared by \`retinagrade prepare\`: \`${prepared.name}\`, from ${layoutWords[prepared.layout]}; images
  ${prepared.preprocessing.crop === 'retina-disc' ? 'cropped to the retina disc found in each photograph' : 'as MedMNIST published them'},
  ${data.size}x${data.size} (${prepared.preprocessing.resize}); ${imagesOf(val)} validation and ${imagesOf(test)} test images.
- File \`${basename(data.file)}\` (md5 \`${data.md5}\`)${upsampling}.`
    : `- ${dataset.title} (MedMNIST v2), licence ${dataset.licence}: fundus photographs from the DeepDRiD
  challenge, downsampled to ${data.size}x${data.size}; official splits ${dataset.splitSizes.train} train /
  ${dataset.splitSizes.val} validation / ${dataset.splitSizes.test} test.
- File \`${basename(data.file)}\` (md5 \`${data.md5}\`)${upsampling}.
- Cite: ${dataset.citations.join(' ')}`;
  const intendedUse = prepared
    ? `Research: seeing how well a grader learns from these photographs and what it attends to
(Grad-CAM). Out of scope: any clinical or screening use; photographs from other cameras, clinics or
populations than these; any decision about a person.`
    : `Research and teaching: comparing methods on the RetinaMNIST benchmark, and seeing what such a
model attends to (Grad-CAM). Out of scope: any clinical or screening use; photographs from other
cameras, clinics or populations than DeepDRiD's; any decision about a person.`;
  // Microaneurysms are around 1/100 of the disc across: a pixel or less at 64 px and below.
  const resolution =
    data.size <= 64
      ? `- The images are ${data.size}x${data.size}: the small lesions that define the milder grades
  (microaneurysms, small haemorrhages) are a pixel or less, so grading rests on coarse cues.`
      : `- The images are ${data.size}x${data.size}: the smallest lesions (microaneurysms) span a few pixels
  at most, less than a grader sees in the full-resolution photograph.`;
  const trainingImages = prepared ? 'the prepared training split' : `${dataset.splitSizes.train} training images`;

  const rarest = test.per_class.reduce((low, c, i) => (c.support > 0 && c.support < test.per_class[low]!.support ? i : low), 0);
  const rarestClass = test.per_class[rarest]!;

  return `# Model card

${WARNING}

## Model

- ${architecture}; ${ensemble}.
- Output: a probability for each diabetic retinopathy grade (${GRADE_NAMES.map((g, i) => `${i} ${g}`).join(', ')}).
- Trained by retinagrade, recipe \`${config.recipe}\`: loss \`${config.loss.kind}\`, sampler \`${config.sampler}\`,
  augmentation: ${augmentation}; ${config.optimizer.name} (lr ${config.optimizer.lr}), ${schedule}, ${epochs}, batch ${config.batchSize};
  ${kept} of the epoch with the best validation ${config.selectOn.toUpperCase()} were kept
  (epoch ${Array.isArray(metrics.best_epoch) ? metrics.best_epoch.join(', ') : metrics.best_epoch}).
- Training time: ${metrics.seconds.toFixed(0)} s${members ? ' (summed over members)' : ''}. Full configuration: \`config.json\`.

## Data

${dataSection}

## Intended use

${intendedUse}

## Results

The official splits: epochs, the temperature, the operating points and the uncertainty threshold
were chosen on validation only, and test was evaluated once, at the end. Every figure is a fraction
(MedMNIST's convention) of the temperature-scaled probabilities; brackets are bootstrap 95%
intervals over the split's images.

| split | ACC | AUC | QWK | macro-F1 | balanced ACC | ECE |
| --- | --- | --- | --- | --- | --- | --- |
${valRow}
${testRow}
${absentNotes.length > 0 ? `\n${absentNotes.join('\n')}\n` : ''}
Per grade on test (AUC: one-vs-rest):

| grade | support | precision | recall | F1 | AUC |
| --- | ---: | ---: | ---: | ---: | ---: |
${gradeRows.join('\n')}

Confusion matrix on test (rows: true grade, columns: predicted grade):

| true \\ predicted | ${GRADE_NAMES.map((_, g) => g).join(' | ')} |
| --- | ${GRADE_NAMES.map(() => '---:').join(' | ')} |
${confusionRows.join('\n')}

### Referral

Screening refers a patient at referable DR (grade >= ${REFERABLE_GRADE}); P(referable) is the summed probability of
those grades. The operating point is the highest validation specificity with sensitivity >= ${fixed(calibration.min_sensitivity)},
applied unchanged to test.

| decision | split | positives | AUC | threshold | sensitivity | specificity |
| --- | --- | --- | --- | ---: | --- | --- |
${screeningRows.join('\n')}

### Calibration and uncertainty

- Temperature ${fixed(calibration.temperature)}, fitted on validation NLL: ECE on test ${fixed(calibration.test.ece_before)} before,
  ${fixed(calibration.test.ece_after)} after (validation: ${fixed(calibration.val.ece_before)} -> ${fixed(calibration.val.ece_after)}).
- A prediction whose normalized predictive entropy exceeds ${fixed(uncertainty.threshold)} (the ${fixed(uncertainty.refer_fraction)}
  most uncertain fraction of validation) comes back "uncertain: refer for human grading". On test this keeps
  ${fixed(uncertainty.test.coverage)} of the images, graded with ACC ${fixed(uncertainty.test.accuracy)} (ACC of all: ${fixed(test.acc)}).

## Limitations

${resolution}
- Small and imbalanced data: ${trainingImages}; the rarest test grade
  (${rarest} ${GRADE_NAMES[rarest]}) has ${rarestClass.support} images, and its recall is ${fixed(rarestClass.recall)}.
  The intervals above are wide for the same reason.
- One source dataset, no external validation, no subgroup analysis (age, sex, ethnicity, camera).
- At prediction time a photograph is cropped to its retina disc and shrunk to ${model.size}x${model.size}, the size the
  model was trained at: whatever detail a full-resolution photograph holds beyond that is not used.

Written by retinagrade ${metrics.version}.
`;
}
