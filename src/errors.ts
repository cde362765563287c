// Errors that are the user's to fix (a missing file, a bad flag value): printed as one clear line
// without a stack trace, exit code 1. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override readonly name = 'UserError';
}
