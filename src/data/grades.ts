// The diabetic retinopathy grades, from RetinaMNIST's registry entry: the one place the rest of the
// code learns their names and count, and where screening's cut-offs are defined.
import { getDataset } from './registry.js';

export const GRADE_NAMES: readonly string[] = getDataset('retinamnist').labels;
export const NUM_GRADES = GRADE_NAMES.length;
/** Referable DR: moderate or worse, the grade at which screening programmes refer a patient. */
export const REFERABLE_GRADE = 2;
/** Vision-threatening DR: severe or proliferative. */
export const VISION_THREATENING_GRADE = 3;
