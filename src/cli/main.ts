// The `retinagrade` command. Each subcommand is a thin shell over the library: parse flags,
// call one function, print the result for people (or --json for machines).
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { GRADE_NAMES } from '../data/grades.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { registerDataCommands } from './data-commands.js';
import { evaluateCommand } from './evaluate.js';
import { exportCommand } from './export.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';
import { registerTrainCommands } from './train/commands.js';

export function buildProgram(): Command {
  const program = new Command('retinagrade')
    .description(
      `Diabetic retinopathy grading (${GRADE_NAMES.map((name, grade) => `${grade} ${name}`).join(', ')}).\n${NOT_FOR_CLINICAL_USE}`,
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  registerTrainCommands(program);
  evaluateCommand(program);
  predictCommand(program);
  serveCommand(program);
  exportCommand(program);
  registerDataCommands(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // A file system refusal (missing folder, a file where a folder should be, no permission) is
    // the user's to fix too; its message names the path.
    const systemError = error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
    if (error instanceof UserError || systemError) {
      process.stderr.write(`retinagrade: error: ${(error as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}
