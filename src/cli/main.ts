// The `retinagrade` command. Each subcommand is a thin shell over the library: parse flags,
// call one function, print the result for people (or --json for machines).
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { NOT_FOR_CLINICAL_USE } from '../train/outputs.js';
import { registerDataCommands } from './data-commands.js';
import { registerModelCommands } from './model-commands.js';

export function buildProgram(): Command {
  const program = new Command('retinagrade')
    .description(`Diabetic retinopathy grading (0 No DR .. 4 Proliferative) on RetinaMNIST.\n${NOT_FOR_CLINICAL_USE}`)
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  registerModelCommands(program);
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
