// `serve`: an HTTP server grading uploaded photographs with a trained run (src/serve/server.ts).
import type { Precision } from '../torch/index.js';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createServer, DEFAULT_MAX_BYTES, MAX_MAX_BYTES, type ModelDescription } from '../serve/server.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { DEFAULT_BATCH } from '../serve/prediction-worker.js';
import { allowUnfinishedOption, integerAtLeast, integerBetween, parseInteger, precisionOption } from './options.js';

const parsePort = (value: string): number => {
  const port = parseInteger(value);
  if (port < 0 || port > 65535) throw new InvalidArgumentError(`expected a port 0-65535, got '${value}'`);
  return port;
};

interface ServeFlags {
  model: string;
  allowUnfinished?: boolean;
  precision?: Precision;
  host: string;
  port: number;
  maxBytes: number;
  workers?: number;
  batch: number;
  batchWait: number;
}

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('serve a trained run over HTTP: a web page at /, POST /v1/predict, GET /v1/model, GET /health')
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .addOption(allowUnfinishedOption())
    .addOption(precisionOption('inference'))
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', parsePort, 8080)
    .option(
      '--max-bytes <n>',
      `largest accepted upload in bytes (at most ${MAX_MAX_BYTES})`,
      integerBetween(1, MAX_MAX_BYTES),
      DEFAULT_MAX_BYTES,
    )
    .option(
      '--workers <n>',
      'grading worker threads, each with an equal share of the libtorch threads (default: one per core)',
      integerAtLeast(1),
    )
    .option('--batch <n>', 'photographs graded together in one forward pass at most', integerBetween(1, 256), DEFAULT_BATCH.max)
    .option(
      '--batch-wait <ms>',
      'how long a forward pass may wait for photographs still being decoded to join it',
      integerBetween(0, 1000),
      DEFAULT_BATCH.waitMs,
    )
    .addHelpText(
      'after',
      `
Examples:
  retinagrade serve --model runs/default
  curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/v1/predict?cam=1'

${NOT_FOR_CLINICAL_USE}`,
    )
    .action(async (flags: ServeFlags) => {
      const app = await createServer(flags.model, {
        open: { allowUnfinished: flags.allowUnfinished, precision: flags.precision },
        maxBytes: flags.maxBytes,
        workers: flags.workers,
        batch: { max: flags.batch, waitMs: flags.batchWait },
        logger: { level: 'warn' },
      });
      let url: string;
      try {
        url = await app.listen({ host: flags.host, port: flags.port });
      } catch (error) {
        await app.close(); // stops the worker thread, which would otherwise keep the process alive
        throw error;
      }
      const { unfinished, precision_fallback } = (await app.inject({ url: '/v1/model' })).json<ModelDescription>();
      const warnings = [unfinished && `serving an ${unfinished}`, precision_fallback].filter(Boolean);
      const warning = warnings.map((text) => `warning: ${text}\n`).join('');
      process.stdout.write(`retinagrade: serving ${flags.model} on ${url} (Ctrl-C stops)\n${warning}${NOT_FOR_CLINICAL_USE}\n`);
      // Stop accepting, finish the requests in flight, stop the worker; a second signal kills.
      const stop = (signal: NodeJS.Signals): void => {
        process.stderr.write(`retinagrade: ${signal}, stopping\n`);
        app.close().catch((error: unknown) => {
          process.stderr.write(`retinagrade: error while stopping: ${(error as Error).message}\n`);
          process.exitCode = 1;
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
