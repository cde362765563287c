// The package's entry point: `import { openModel } from 'retinagrade'` (README, "As a library").
export { openModel, RetinaModel, type GradcamOptions, type GradeOptions, type ImageSource, type ModelInfo } from './api.js';
export type { CropMode, Prediction } from './model/grade-photo.js';
export { GRADE_NAMES } from './data/grades.js';
export { NOT_FOR_CLINICAL_USE } from './notice.js';
