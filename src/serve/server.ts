// The HTTP server behind `retinagrade serve`: grades uploaded photographs with one run directory.
// Grading happens in a PredictionWorker, so the event loop keeps answering other requests (and
// /health) while a forward pass or a Grad-CAM runs.
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyBodyParser, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { EvalMetrics } from '../eval/index.js';
import { UserError } from '../errors.js';
import { GRADE_NAMES } from '../data/grades.js';
import type { CropMode, Prediction } from '../model/grade-photo.js';
import { RunDir } from '../model/run-dir.js';
import type { RunMetrics } from '../model/run-metrics.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { INDEX_PAGE, INDEX_PAGE_CSP } from './page.js';
import { CancelledError, PredictionWorker } from './prediction-worker.js';

export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** Photographs at the worker (the one being graded included) beyond which new ones are turned away (503). */
export const DEFAULT_MAX_QUEUED = 16;
/**
 * A request whose upload takes longer than this is answered 408 by Node. Grading has its own
 * deadline per photograph (PredictionWorker's), after which the stuck worker is stopped and
 * requests get 500.
 */
const REQUEST_TIMEOUT_MS = 120_000;

export interface ServerOptions {
  /** Largest request body accepted (413 above it). */
  maxBytes?: number;
  /** Grading requests at the worker at most, the one being graded included (503 with Retry-After above it). */
  maxQueued?: number;
  /** Fastify's logger (pino); off unless given. */
  logger?: FastifyServerOptions['logger'];
  /** Milliseconds the worker may take over one photograph before it is stopped as stuck. */
  gradingDeadlineMs?: number;
}

type Scores = Pick<EvalMetrics, 'acc' | 'auc' | 'qwk'>;
export interface ModelDescription {
  model: string;
  width: number | null;
  input_size: number;
  ensemble: number;
  grades: readonly string[];
  /** From the run's metrics.json; null for a run without one. */
  metrics: { val: Scores; test: Scores } | null;
  disclaimer: string;
}

export interface PredictResponse {
  grade: number;
  grade_name: string;
  probabilities: number[];
  warnings: string[];
  disclaimer: string;
  /** Base64 PNG: the model's input beside it with the predicted grade's Grad-CAM heat map. */
  cam?: string;
}

/** The JSON body of every error response. */
export interface ErrorResponse {
  statusCode: number;
  error: string;
  message: string;
}

const UPLOAD_NAME = 'uploaded image';
const ACCEPTED_TYPES = 'image/* (PNG, JPEG, TIFF, WebP) or application/octet-stream';

function readMetrics(run: RunDir): ModelDescription['metrics'] {
  if (!run.has('metrics')) return null;
  const scores = ({ acc, auc, qwk }: Scores): Scores => ({ acc, auc, qwk });
  try {
    const metrics = run.readJson<RunMetrics>('metrics');
    return { val: scores(metrics.val), test: scores(metrics.test) };
  } catch (error) {
    throw new UserError(`${run.file('metrics')} is not a run's metrics: ${(error as Error).message}`);
  }
}

function errorBody(statusCode: number, message: string): ErrorResponse {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/**
 * A fastify instance serving `runDir`, not yet listening (call `listen`, or `inject` in tests).
 * Loads the model in a worker thread first; an unusable run directory rejects with a UserError.
 * Closing the instance stops the worker.
 */
export async function createServer(runDir: string, options: ServerOptions = {}): Promise<FastifyInstance> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const metrics = readMetrics(new RunDir(runDir));
  const worker = await PredictionWorker.open(runDir, { deadlineMs: options.gradingDeadlineMs });
  const { modelConfig, ensemble } = worker.model;
  const description: ModelDescription = {
    model: modelConfig.name,
    width: modelConfig.width ?? null,
    input_size: modelConfig.inputSize,
    ensemble,
    grades: GRADE_NAMES,
    metrics,
    disclaimer: NOT_FOR_CLINICAL_USE,
  };

  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: maxBytes, requestTimeout: REQUEST_TIMEOUT_MS });
  app.addHook('onClose', () => worker.close());
  // The methods of each path, as routes are added: a known path asked with another method is 405.
  const methodsOf = new Map<string, string[]>();
  app.addHook('onRoute', ({ url, method }) => {
    methodsOf.set(url, [...(methodsOf.get(url) ?? []), ...[method].flat()]);
  });

  // Bodies are raw image bytes only: without the JSON and text parsers, any other Content-Type is
  // refused with 415 before a byte reaches the worker.
  app.removeAllContentTypeParsers();
  const keepBytes: FastifyBodyParser<Buffer> = (_request, body, done) => done(null, body);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, keepBytes);
  // Matched against the whole header, parameters included (`image/jpeg; foo=bar`).
  app.addContentTypeParser(/^image\/[\w.+-]+(;|$)/, { parseAs: 'buffer' }, keepBytes);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    let message = error.message;
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const type = request.headers['content-type'];
      message = `${type ? `unsupported Content-Type '${type}'` : 'no Content-Type'}: send the image bytes as ${ACCEPTED_TYPES}`;
    } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      message = `request body too large: the limit is ${maxBytes} bytes (retinagrade serve --max-bytes)`;
    } else if (status >= 500) {
      request.log.error({ err: error }, 'grading failed');
      message = worker.alive ? 'internal error while grading' : 'the prediction worker has stopped; restart the server';
    }
    void reply.status(status).send(errorBody(status, message));
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = methodsOf.get(path)?.join(', ');
    if (allowed) {
      void reply
        .status(405)
        .header('allow', allowed)
        .send(errorBody(405, `${request.method} ${path} is not served: use ${allowed}`));
      return;
    }
    void reply
      .status(404)
      .send(errorBody(404, `no route ${request.method} ${path}; see GET / for the page, POST /v1/predict, GET /v1/model, GET /health`));
  });

  app.get('/', (_request, reply) => {
    void reply.type('text/html; charset=utf-8').header('content-security-policy', INDEX_PAGE_CSP).send(INDEX_PAGE);
  });

  app.get('/health', (_request, reply) => {
    if (worker.alive) return { status: 'ok' };
    return reply.status(503).send({ status: 'unavailable', message: 'the prediction worker has stopped' });
  });

  app.get('/v1/model', () => description);

  app.post<{ Querystring: { crop: CropMode; cam: 0 | 1 }; Body: Buffer | undefined }>(
    '/v1/predict',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            crop: { type: 'string', enum: ['disc', 'none'], default: 'disc' },
            cam: { type: 'integer', enum: [0, 1], default: 0 },
          },
        },
      },
    },
    async (request, reply): Promise<PredictResponse | ErrorResponse> => {
      const bytes = request.body;
      // No body at all arrives without a Content-Type and so skips the parser: refuse it here.
      if (!bytes?.length) {
        void reply.status(400);
        return errorBody(400, `empty request body: send the image bytes as the body (${ACCEPTED_TYPES})`);
      }
      // Grading is one photograph at a time: a queue beyond this would only hold memory and time out.
      if (worker.pending >= maxQueued) {
        void reply.status(503).header('retry-after', '1');
        return errorBody(503, `busy: ${worker.pending} waiting to be graded (at most ${maxQueued}); retry shortly`);
      }
      // A client that goes away while its photograph waits takes it out of the queue: its
      // connection closes (also before this handler ran, or under a pipelined request that has
      // no response socket yet), or its response closes unfinished.
      const abandoned = new AbortController();
      const abandon = (): void => abandoned.abort();
      const connection = request.raw.socket;
      if (connection.destroyed) abandon();
      connection.once('close', abandon);
      reply.raw.once('close', () => {
        connection.off('close', abandon);
        if (!reply.raw.writableFinished) abandon();
      });
      let record: Prediction | undefined;
      try {
        [record] = await worker.predict(
          [{ name: UPLOAD_NAME, bytes }],
          { crop: request.query.crop, camPng: request.query.cam === 1 },
          abandoned.signal,
        );
      } catch (error) {
        // Nobody is listening: nginx's "client closed request", for the log.
        if (error instanceof CancelledError) return reply.status(499).send();
        throw error;
      }
      if (record!.error !== undefined) {
        void reply.status(400);
        return errorBody(400, record!.error);
      }
      const { grade, grade_name, probabilities, warnings, camPng } = record!;
      return {
        grade: grade!,
        grade_name: grade_name!,
        probabilities: probabilities!,
        warnings,
        disclaimer: NOT_FOR_CLINICAL_USE,
        ...(camPng ? { cam: Buffer.from(camPng.buffer, camPng.byteOffset, camPng.length).toString('base64') } : {}),
      };
    },
  );
  return app;
}
