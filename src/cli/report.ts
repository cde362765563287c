// `report`: write a finished run's report.html (src/report/report.ts).
import type { Command } from 'commander';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { writeReport } from '../report/report.js';

export function reportCommand(program: Command): void {
  program
    .command('report')
    .description(
      "write a finished run's report.html: figures with intervals, charts and the model card, one file that opens without a network",
    )
    .argument('<run>', 'run directory written by `train`')
    .addHelpText('after', '\nExample:\n  retinagrade report runs/default')
    .action(async (runDir: string) => {
      process.stdout.write(`wrote ${await writeReport(runDir)}\n${NOT_FOR_CLINICAL_USE}\n`);
    });
}
