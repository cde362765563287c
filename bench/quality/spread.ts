// Mean ± standard deviation over seeds, as RESULTS.md's tables print them.
export const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]): number => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

/** A fraction as percentage points, e.g. "52.7 ± 0.8". */
export const percentSpread = (xs: number[]): string => `${(100 * mean(xs)).toFixed(1)} ± ${(100 * std(xs)).toFixed(1)}`;
/** A statistic kept as a fraction (QWK), e.g. "0.564 ± 0.022". */
export const fractionSpread = (xs: number[]): string => `${mean(xs).toFixed(3)} ± ${std(xs).toFixed(3)}`;
