// Validation and normalisation shared by every metric: callers hand in plain arrays, the
// metric code works on one checked shape (int labels, flat row-major float64 scores).

/**
 * N x K class scores: a flat row-major array of N*K numbers, or N rows of K numbers.
 * Most metrics need only an ordering of the scores (logits work); calibration needs
 * probabilities.
 */
export type Scores = Float32Array | Float64Array | readonly number[] | readonly (readonly number[])[];

/** Checked inputs: `scores[i * numClasses + c]` is sample i's score for class c. */
export interface EvalInputs {
  readonly labels: Int32Array;
  readonly scores: Float64Array;
  readonly count: number;
  readonly numClasses: number;
}

function isRows(probs: Scores): probs is readonly (readonly number[])[] {
  return Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number';
}

/** Checks shapes, label range and score finiteness; throws an Error saying what is wrong. */
export function checkInputs(labels: ArrayLike<number>, probs: Scores, numClasses: number): EvalInputs {
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new Error(`numClasses must be an integer >= 2, got ${numClasses}`);
  }
  const count = labels.length;
  if (count === 0) throw new Error('labels is empty: metrics need at least one sample');

  const scores = new Float64Array(count * numClasses);
  if (isRows(probs)) {
    if (probs.length !== count) {
      throw new Error(`labels has ${count} entries but probs has ${probs.length} rows`);
    }
    probs.forEach((row, i) => {
      if (!Array.isArray(row) || row.length !== numClasses) {
        const got = Array.isArray(row) ? `${row.length} scores` : `a ${typeof row}`;
        throw new Error(`probs row ${i} has ${got}, expected ${numClasses} scores (numClasses)`);
      }
      scores.set(row, i * numClasses);
    });
  } else {
    if (probs.length !== scores.length) {
      throw new Error(
        `probs has ${probs.length} values, expected labels.length x numClasses = ${count} x ${numClasses} = ${scores.length}`,
      );
    }
    scores.set(probs);
  }
  // Checked after copying so non-numbers in a plain array (which become NaN) are caught too.
  for (let j = 0; j < scores.length; j++) {
    if (!Number.isFinite(scores[j])) {
      const row = Math.floor(j / numClasses);
      const value = isRows(probs) ? probs[row][j % numClasses] : probs[j];
      throw new Error(`score at row ${row}, class ${j % numClasses} is ${String(value)}; scores must be finite numbers`);
    }
  }

  const checkedLabels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new Error(`label at index ${i} is ${label}, expected an integer in 0..${numClasses - 1}`);
    }
    checkedLabels[i] = label;
  }
  return { labels: checkedLabels, scores, count, numClasses };
}

/** Predicted class per row; on tied scores the lowest class wins, as numpy.argmax does. */
export function argmaxRows({ scores, count, numClasses }: EvalInputs): Int32Array {
  const preds = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const offset = i * numClasses;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (scores[offset + c] > scores[offset + best]) best = c;
    preds[i] = best;
  }
  return preds;
}
