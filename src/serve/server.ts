// The HTTP server behind `retinagrade serve`: grades uploaded photographs with one run directory.
// Grading happens in a PredictionWorker, so the event loop keeps answering other requests (and
// /health) while a forward pass or a Grad-CAM runs.
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyBodyParser, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { EvalMetrics } from '../eval/index.js';
import { ModelOutputError, UserError } from '../errors.js';
import { MAX_IMAGE_FILE_BYTES } from '../data/fundus.js';
import { GRADE_NAMES } from '../data/grades.js';
import type { CropMode, Prediction } from '../model/grade-photo.js';
import { RunDir } from '../model/run-dir.js';
import { type OpenRunOptions, readCalibration } from '../model/open-run.js';
import type { Precision } from '../torch/index.js';
import type { RunCalibration, ScreeningFigures, Status } from '../model/run-calibration.js';
import type { RunMetrics } from '../model/run-metrics.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { BrowserGrading, ORT_FILES } from './browser-grading.js';
import { INDEX_PAGE, INDEX_PAGE_CSP } from './page.js';
import { type BatchOptions, CancelledError } from './prediction-worker.js';
import { WorkerPool } from './worker-pool.js';

export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** The largest --max-bytes accepted: the largest image file `predict` reads. */
export const MAX_MAX_BYTES = MAX_IMAGE_FILE_BYTES;
/** Uploads being received or graded (the one being graded included) beyond which new ones are turned away (503). */
export const DEFAULT_MAX_QUEUED = 16;
/** Upload bytes being received or graded at most, by default: four uploads of the largest size. */
export const DEFAULT_MAX_BYTES_IN_FLIGHT_UPLOADS = 4;
/**
 * A request whose upload takes longer than this is answered 408 by Node. Grading has its own
 * deadline per photograph (PredictionWorker's), after which the stuck worker is stopped and
 * requests get 500.
 */
const REQUEST_TIMEOUT_MS = 120_000;

export interface ServerOptions {
  /** Largest request body accepted (413 above it); at most MAX_MAX_BYTES. */
  maxBytes?: number;
  /** Uploads being received or graded at most, the one being graded included (503 with Retry-After above it). */
  maxQueued?: number;
  /**
   * Upload bytes being received or graded at most (503 with Retry-After above it): each upload
   * counts its Content-Length, or maxBytes when it has none. Default: 4 x maxBytes.
   */
  maxBytesInFlight?: number;
  /** Fastify's logger (pino); off unless given. */
  logger?: FastifyServerOptions['logger'];
  /** Milliseconds the worker may take over one photograph before it is stopped as stuck. */
  gradingDeadlineMs?: number;
  /**
   * How the run is opened: `allowUnfinished` serves an unfinished run's best epoch so far (every
   * prediction says so in its warnings); `precision` overrides the one the run was trained at.
   */
  open?: OpenRunOptions;
  /** Grading worker threads (default: one per core, or per RETINAGRADE_THREADS thread). */
  workers?: number;
  /** Photographs graded together in one forward pass (DEFAULT_BATCH). */
  batch?: BatchOptions;
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
  /** The page may grade inside the browser (GET /v1/model.onnx, onnxruntime-web under /ort/). */
  browser_grading: boolean;
  /** The run's calibration.json (temperature, operating points, uncertainty threshold); null without one. */
  calibration: RunCalibration | null;
  /** Set when serving an unfinished run (--allow-unfinished): what the weights are. */
  unfinished?: string;
  /** The precision the model computes at (the run's, or serve's --precision where this CPU has it). */
  precision: Precision;
  /** Why the precision is not the one asked for (bf16 on a CPU without it). */
  precision_fallback?: string;
  disclaimer: string;
}

export interface PredictResponse extends Omit<ScreeningFigures, 'status'> {
  status: Exclude<Status, 'refused'>;
  grade: number;
  grade_name: string;
  /** Temperature-scaled. */
  probabilities: number[];
  warnings: string[];
  disclaimer: string;
  /** Base64 PNG: the model's input beside it with the predicted grade's Grad-CAM heat map. */
  cam?: string;
}

/** 422: the image is not a gradable colour fundus photograph; no grade (`force=1` grades it anyway). */
export interface RefusalResponse extends ErrorResponse {
  status: 'refused';
  reason: string;
  disclaimer: string;
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

/**
 * Counts the uploads being received or graded and their bytes; each is released when its response
 * closes (sent, or its client gone). The workers grade a few photographs at a time: a queue beyond
 * this would only hold memory and time out.
 */
class UploadAdmission {
  #uploads = 0;
  #bytes = 0;
  constructor(
    readonly maxUploads: number,
    readonly maxBytes: number,
  ) {}

  /** Admits an upload of `bytes` until `response` closes; else the reason it is refused. */
  admit(bytes: number, response: NodeJS.EventEmitter): string | undefined {
    if (this.#uploads >= this.maxUploads) return `busy: ${this.#uploads} waiting to be graded (at most ${this.maxUploads}); retry shortly`;
    if (this.#bytes + bytes > this.maxBytes) {
      return `busy: ${this.#bytes} bytes of uploads waiting to be graded (at most ${this.maxBytes} at once); retry shortly`;
    }
    this.#uploads++;
    this.#bytes += bytes;
    response.once('close', () => {
      this.#uploads--;
      this.#bytes -= bytes;
    });
    return undefined;
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const isLoopback = (address: string): boolean => address === '::1' || /^(::ffff:)?127\./.test(address);

/**
 * Why a request's Host header is refused, when the server listens on a loopback address only:
 * a web page whose domain an attacker re-points to 127.0.0.1 (DNS rebinding) sends its own name
 * as Host, so only loopback names with this server's port are answered.
 */
function refusedHost(app: FastifyInstance, host: string | undefined): string | undefined {
  const bound = app.server.address();
  if (bound === null || typeof bound === 'string' || !isLoopback(bound.address)) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(`http://${host}`);
  } catch {}
  const port = url && (url.port || '80');
  if (url && LOOPBACK_HOSTS.has(url.hostname) && port === String(bound.port) && url.host === host?.toLowerCase()) return undefined;
  return (
    `Host '${host ?? ''}' is not this server: a server listening on ${bound.address} answers only ` +
    `localhost, 127.0.0.1 or [::1] with port ${bound.port} (refused to guard against DNS rebinding)`
  );
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
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_MAX_BYTES) {
    throw new UserError(`--max-bytes must be an integer from 1 to ${MAX_MAX_BYTES} (256 MiB), got ${maxBytes}`);
  }
  const maxBytesInFlight = options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT_UPLOADS * maxBytes;
  if (maxBytesInFlight < maxBytes) throw new RangeError(`maxBytesInFlight (${maxBytesInFlight}) must be at least maxBytes (${maxBytes})`);
  const metrics = readMetrics(new RunDir(runDir));
  const calibration = readCalibration(new RunDir(runDir)) ?? null;
  const worker = await WorkerPool.open(runDir, {
    deadlineMs: options.gradingDeadlineMs,
    open: options.open,
    workers: options.workers,
    batch: options.batch,
  });
  const { modelConfig, ensemble, unfinished, precision, precisionFallback } = worker.model;
  const browser = new BrowserGrading(runDir, options.open);
  const description: ModelDescription = {
    model: modelConfig.name,
    width: modelConfig.width ?? null,
    input_size: modelConfig.inputSize,
    ensemble,
    grades: GRADE_NAMES,
    metrics,
    browser_grading: browser.available,
    calibration,
    ...(unfinished ? { unfinished } : {}),
    precision,
    ...(precisionFallback ? { precision_fallback: precisionFallback } : {}),
    disclaimer: NOT_FOR_CLINICAL_USE,
  };

  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: maxBytes, requestTimeout: REQUEST_TIMEOUT_MS });
  app.addHook('onClose', () => worker.close());
  // Browsers must take every answer as the type it says it is (an error page is never run as a script).
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('x-content-type-options', 'nosniff');
  });
  app.addHook('onRequest', async (request, reply) => {
    const wrongHost = refusedHost(app, request.headers.host);
    if (wrongHost) return reply.status(403).send(errorBody(403, wrongHost));
  });
  // Uploads are admitted on their headers, before a byte of the body is read: one that could not
  // be queued is refused at once (and its connection closed, so its body is never buffered).
  const uploads = new UploadAdmission(maxQueued, maxBytesInFlight);
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.url !== '/v1/predict') return;
    const declared = Number(request.headers['content-length']);
    // Larger than the limit: the body parser answers 413 without reading it.
    if (declared > maxBytes) return;
    const busy = uploads.admit(Number.isInteger(declared) && declared >= 0 ? declared : maxBytes, reply.raw);
    if (busy) return reply.status(503).header('retry-after', '1').header('connection', 'close').send(errorBody(503, busy));
  });
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
    } else if (error instanceof ModelOutputError) {
      // The model, not the photograph: never a grade, and said plainly.
      request.log.error({ err: error }, 'the model gave no probabilities');
      message = error.message;
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

  // The page's in-browser grading: the model and the runtime, never the photograph.
  app.get('/v1/model.onnx', (_request, reply) => {
    let bytes: Uint8Array;
    try {
      bytes = browser.model();
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      return reply.status(404).send(errorBody(404, error.message));
    }
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  });
  app.get<{ Params: { file: string } }>('/ort/:file', (request, reply) => {
    const type = Object.hasOwn(ORT_FILES, request.params.file) ? ORT_FILES[request.params.file] : undefined;
    if (!type || !browser.available) {
      return reply.status(404).send(errorBody(404, `no onnxruntime-web file '${request.params.file}' is served`));
    }
    return reply.type(type).send(browser.ortFile(request.params.file));
  });

  app.post<{ Querystring: { crop: CropMode; cam: 0 | 1; force: 0 | 1 }; Body: Buffer | undefined }>(
    '/v1/predict',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            crop: { type: 'string', enum: ['disc', 'none'], default: 'disc' },
            cam: { type: 'integer', enum: [0, 1], default: 0 },
            force: { type: 'integer', enum: [0, 1], default: 0 },
          },
        },
      },
    },
    async (request, reply): Promise<PredictResponse | ErrorResponse | RefusalResponse> => {
      const bytes = request.body;
      // No body at all arrives without a Content-Type and so skips the parser: refuse it here.
      if (!bytes?.length) {
        void reply.status(400);
        return errorBody(400, `empty request body: send the image bytes as the body (${ACCEPTED_TYPES})`);
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
          { crop: request.query.crop, camPng: request.query.cam === 1, force: request.query.force === 1 },
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
      if (record!.status === 'refused') {
        void reply.status(422);
        return { ...errorBody(422, record!.reason!), status: 'refused', reason: record!.reason!, disclaimer: NOT_FOR_CLINICAL_USE };
      }
      const { grade, grade_name, probabilities, warnings, camPng, status, p_referable, p_vision_threatening, uncertainty } = record!;
      return {
        status: status === 'uncertain' ? 'uncertain' : 'graded',
        grade: grade!,
        grade_name: grade_name!,
        probabilities: probabilities!,
        p_referable: p_referable!,
        p_vision_threatening: p_vision_threatening!,
        ...(record!.referable === undefined ? {} : { referable: record!.referable, vision_threatening: record!.vision_threatening }),
        uncertainty: uncertainty!,
        warnings,
        disclaimer: NOT_FOR_CLINICAL_USE,
        ...(camPng ? { cam: Buffer.from(camPng.buffer, camPng.byteOffset, camPng.length).toString('base64') } : {}),
      };
    },
  );
  return app;
}
