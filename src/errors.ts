// Errors that are the user's to fix (a missing file, a bad flag value): printed as one clear line
// without a stack trace, exit code 1. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override readonly name: string = 'UserError';
}

/**
 * A model gave outputs that are not probabilities (NaN, an infinity, rows not summing to 1): its
 * weights cannot grade anything. Never a grade: `predict` and `evaluate` stop with it, the server
 * answers 500 with its message.
 */
export class ModelOutputError extends UserError {
  override readonly name = 'ModelOutputError';
}
