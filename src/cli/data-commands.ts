// info and download: the commands about the dataset itself.
import { Option, type Command } from 'commander';
import { datasetCard, loadMedMNIST } from '../data/medmnist.js';
import { defaultDataDir, locateDatasetFile } from '../data/locate.js';
import { downloadDataset, locateOrDownload } from '../data/download.js';
import { downloadBar, firstUse, addDataOptions, mirrorOption } from './data-download.js';
import { DEFAULT_IMAGE_SIZE, IMAGE_SIZES, datasetKeys, getDatasetFile, type ImageSize } from '../data/registry.js';
import { dataDirOption, integerAtLeast } from './options.js';

const sizeOption = (): Option =>
  new Option('--size <px>', 'image size of the file (train trains at this size by default)')
    .choices(IMAGE_SIZES.map(String))
    .default(String(DEFAULT_IMAGE_SIZE));
const datasetOption = (): Option => new Option('--dataset <key>', 'MedMNIST dataset').choices(datasetKeys()).default('retinamnist');

const pct = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(1)}%`;

export function registerDataCommands(program: Command): void {
  const info = program
    .command('info')
    .description('print the dataset card: splits, class histograms, channel statistics, licence, citation');
  addDataOptions(info)
    .addOption(datasetOption())
    .addOption(sizeOption())
    .option('--json', 'print the card as JSON')
    .addHelpText('after', '\nExample:\n  retinagrade info --data-dir ../shared/data --json')
    .action(async (flags: { dataDir?: string; download: boolean; mirror?: string; dataset: string; size: string; json?: boolean }) => {
      const size = Number(flags.size) as ImageSize;
      const bar = downloadBar();
      const file = await locateOrDownload(
        flags.dataset,
        size,
        () => locateDatasetFile(flags.dataset, size, { dataDir: flags.dataDir }),
        firstUse(flags, bar),
      ).finally(bar.stop);
      const card = datasetCard(loadMedMNIST(file, flags.dataset, { expectedMd5: getDatasetFile(flags.dataset, size).md5 }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(card, null, 2)}\n`);
        return;
      }
      const lines = [
        `${card.title} (${card.dataset}), ${card.size}x${card.size}x${card.channels}, task: ${card.task}`,
        `file: ${card.file} (md5 ${card.md5})`,
        `classes: ${card.classNames.map((name, k) => `${k} ${name}`).join(', ')}`,
      ];
      for (const [split, s] of Object.entries(card.splits)) {
        const histogram = s.classCounts.map((c) => `${c} (${pct(c, s.count)})`).join(', ');
        const stats = s.channelMean.map((m, c) => `${m.toFixed(4)}±${s.channelStd[c]!.toFixed(4)}`).join(' ');
        lines.push(`${split.padEnd(5)} ${String(s.count).padStart(5)} images; per class ${histogram}; channel mean±std ${stats}`);
      }
      lines.push(`licence: ${card.licence}`, ...card.citations.map((c) => `cite: ${c}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('download')
    .description('fetch an official MedMNIST file (resumable, md5-verified)')
    .addOption(datasetOption())
    .addOption(sizeOption())
    .addOption(new Option('--dir <dir>', 'folder to put it in (default: --data-dir / $MEDMNIST_DIR / ~/.medmnist)').conflicts('dataDir'))
    .addOption(dataDirOption())
    .addOption(mirrorOption())
    .option('--retries <n>', 'retries after network errors', integerAtLeast(0), 4)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  retinagrade download\n  retinagrade download --size 128 --mirror http://mirror.example/medmnist')
    .action(
      async (flags: {
        dataset: string;
        size: string;
        dir?: string;
        dataDir?: string;
        mirror?: string;
        retries: number;
        json?: boolean;
      }) => {
        const bar = downloadBar(process.stderr.isTTY && !flags.json);
        const result = await downloadDataset({
          dataset: flags.dataset,
          size: Number(flags.size) as ImageSize,
          dir: flags.dir ?? defaultDataDir({ dataDir: flags.dataDir }),
          mirror: flags.mirror,
          retries: flags.retries,
          onProgress: bar.onProgress,
        }).finally(bar.stop);
        if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else {
          for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
          process.stdout.write(`${result.alreadyPresent ? 'already present' : 'downloaded'}: ${result.path} (md5 ${result.md5})\n`);
        }
      },
    );
}
