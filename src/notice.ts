// The notice every prediction, report and page carries.
export const NOT_FOR_CLINICAL_USE = 'Research software: not a medical device and not for clinical use.';
