// Public entry of the evaluation module: metrics and bootstrap intervals over plain arrays.
export * from './metrics.js';
export * from './bootstrap.js';
export * from './referable.js';
export * from './calibration.js';
export * from './uncertainty.js';
