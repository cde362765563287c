// The `retinagrade` command. Each subcommand is a thin shell over the library: parse flags,
// call one function, print the result for people (or --json for machines).
import { Command } from 'commander';
import { UserError } from '../errors.js';
import { GRADE_NAMES } from '../data/grades.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { VERSION } from '../version.js';
import { registerDataCommands } from './data-commands.js';
import { evaluateCommand } from './evaluate.js';
import { exportCommand } from './export.js';
import { predictCommand } from './predict.js';
import { prepareCommand } from './prepare.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';
import { registerTrainCommands } from './train/commands.js';

export function buildProgram(): Command {
  const program = new Command('retinagrade')
    .description(
      `Diabetic retinopathy grading (${GRADE_NAMES.map((name, grade) => `${grade} ${name}`).join(', ')}).\n${NOT_FOR_CLINICAL_USE}`,
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // commander's own errors ("error: unknown option ...") in the style of ours.
    .configureOutput({ outputError: (message, write) => write(`retinagrade: ${message}`) });
  registerTrainCommands(program);
  evaluateCommand(program);
  predictCommand(program);
  prepareCommand(program);
  reportCommand(program);
  serveCommand(program);
  exportCommand(program);
  registerDataCommands(program);
  return program;
}

/**
 * `npx retinagrade` and `npm start` run this process under `sh -c`: a signal sent to the process the
 * user started may stop the shell and leave this one orphaned. When the parent goes away, this
 * process takes it as the SIGTERM it was meant to get, so serve and train stop as on Ctrl-C.
 * Only under npm (which sets npm_command): a process started as `nohup retinagrade serve &` must
 * outlive the shell that started it.
 */
function stopWhenOrphaned(): void {
  if (!process.env.npm_command) return;
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 250);
  watch.unref();
}

export async function main(argv = process.argv): Promise<void> {
  stopWhenOrphaned();
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
