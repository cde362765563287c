export * from './module.js';
export * from './layers.js';
export * from './models.js';
export { seedInit } from './init.js';
export { countMacs } from './flops.js';
export * from './losses.js';
