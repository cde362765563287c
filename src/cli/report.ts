// `report`: write a finished run's report.html (src/report/report.ts). The gallery's Grad-CAM
// pictures need the run's test images: RetinaMNIST's (found or fetched as `evaluate` does), or the
// prepared dataset's with --data.
import type { Command } from 'commander';
import { ensureRetinaFile, loadRetinaTensors } from '../data/retinamnist.js';
import { loadPreparedData, releaseTrainingData } from '../data/training-data.js';
import { UserError } from '../errors.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { reportableMetrics, writeReport } from '../report/report.js';
import { addDataOptions, downloadBar, firstUse } from './data-download.js';

interface ReportFlags {
  dataDir?: string;
  download: boolean;
  mirror?: string;
  data?: string;
}

export function reportCommand(program: Command): void {
  const command = program
    .command('report')
    .description(
      "write a finished run's report.html: figures with intervals, charts, a gallery of test images with their Grad-CAM " +
        'and the model card, one file that opens without a network',
    )
    .argument('<run>', 'run directory written by `train`');
  addDataOptions(command)
    .option('--data <dir>', 'the dataset folder made by `retinagrade prepare` that the run was trained on')
    .addHelpText('after', '\nExample:\n  retinagrade report runs/default')
    .action(async (runDir: string, flags: ReportFlags) => {
      const metrics = reportableMetrics(runDir);
      const prepared = metrics.data.prepared;
      if (prepared && !flags.data) {
        throw new UserError(`${runDir} was trained on the prepared dataset '${prepared.name}': give its folder with --data`);
      }
      const wanted = { dataDir: flags.dataDir, size: metrics.model.size };
      if (!flags.data) {
        const bar = downloadBar();
        await ensureRetinaFile(wanted, firstUse(flags, bar)).finally(bar.stop);
      }
      const data = flags.data ? loadPreparedData(flags.data, wanted.size) : loadRetinaTensors(wanted);
      try {
        process.stdout.write(`wrote ${await writeReport(runDir, data.test)}\n${NOT_FOR_CLINICAL_USE}\n`);
      } finally {
        releaseTrainingData(data);
      }
    });
}
