import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bombPng } from '../helpers/bomb-png.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import { NOT_FUNDUS_WARNING } from '../../src/data/fundus.js';
import { createServer, MAX_MAX_BYTES } from '../../src/serve/server.js';
import { REFUSED_MESSAGE } from '../../src/model/grade-photo.js';
import { CAPTION_HEIGHT } from '../../src/explain/gradcam.js';
import { UserError } from '../../src/errors.js';
import { LossConfigSchema, ModelConfigSchema } from '../../src/nn/index.js';
import * as ort from 'onnxruntime-node';
import { RunDir } from '../../src/model/run-dir.js';
import { resolvePrecision } from '../../src/torch/index.js';

const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), '../samples');
const photo = readFileSync(join(samples, 'fundus_a.jpg'));
const MAX_BYTES = 64 * 1024;

const metrics = {
  val: { acc: 0.5, auc: 0.7, qwk: 0.4, macro_f1: 0.3 },
  test: { acc: 0.55, auc: 0.72, qwk: 0.45, macro_f1: 0.31, ci95: {} },
};
let app: FastifyInstance;
let ensembleApp: FastifyInstance;

beforeAll(async () => {
  [app, ensembleApp] = await Promise.all([
    createServer(untrainedRun(1, { metrics }), { maxBytes: MAX_BYTES }),
    createServer(untrainedRun(2)),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), ensembleApp?.close()]);
});

const predict = (body: Buffer | string, query = '', contentType = 'image/jpeg', server = app) =>
  server.inject({ method: 'POST', url: `/v1/predict${query}`, headers: { 'content-type': contentType }, body });

describe('POST /v1/predict', () => {
  it('grades a photograph: a grade, probabilities summing to 1, the disclaimer', async () => {
    const response = await predict(photo);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.probabilities).toHaveLength(5);
    expect(body.probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    expect(body.grade).toBe(body.probabilities.indexOf(Math.max(...body.probabilities)));
    expect(body.grade_name).toBeTypeOf('string');
    expect(body.status).toBe('graded'); // the untrained run has no calibration.json, so no uncertainty threshold
    expect(body.p_referable).toBeCloseTo(body.probabilities[2] + body.probabilities[3] + body.probabilities[4], 10);
    expect(body.p_vision_threatening).toBeCloseTo(body.probabilities[3] + body.probabilities[4], 10);
    expect(body.warnings).toEqual([]);
    expect(body.disclaimer).toBe(NOT_FOR_CLINICAL_USE);
    expect(body.cam).toBeUndefined();
  });

  it('refuses with 422 an image that does not look like a fundus photograph; force=1 grades it with the warning', async () => {
    const grey = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const refused = await predict(grey, '', 'image/png');
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toEqual({
      statusCode: 422,
      error: 'Unprocessable Entity',
      status: 'refused',
      message: `${REFUSED_MESSAGE}: ${NOT_FUNDUS_WARNING}`,
      reason: `${REFUSED_MESSAGE}: ${NOT_FUNDUS_WARNING}`,
      disclaimer: NOT_FOR_CLINICAL_USE,
    });
    const forced = await predict(grey, '?force=1', 'image/png');
    expect(forced.statusCode).toBe(200);
    expect(forced.json().warnings).toEqual([NOT_FUNDUS_WARNING]);
    expect(forced.json().grade).toBeTypeOf('number');
  });

  it('cam=1 adds the Grad-CAM picture as a base64 PNG, for single models and ensembles', async () => {
    for (const server of [app, ensembleApp]) {
      const response = await predict(photo, '?cam=1&crop=disc', 'application/octet-stream', server);
      expect(response.statusCode).toBe(200);
      // The 28 px input and its overlay side by side, upscaled 4 times, over the caption band.
      const png = Buffer.from(response.json().cam, 'base64');
      expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 224, height: 112 + CAPTION_HEIGHT });
    }
  });

  it.each([
    ['an empty body', Buffer.alloc(0), '', 'image/jpeg', 400, /empty request body/],
    ['bytes that are not an image', Buffer.from('hello, not a photograph'), '', 'image/jpeg', 400, /not a readable image/],
    ['a truncated JPEG', photo.subarray(0, photo.length >> 1), '', 'image/jpeg', 400, /truncated or corrupt/],
    ['a decompression bomb', bombPng(), '', 'image/png', 400, /20000x20000.*decompression bomb/],
    ['an unknown crop', photo, '?crop=middle', 'image/jpeg', 400, /crop/],
    ['a JSON body', '{"image": "..."}', '', 'application/json', 415, /unsupported Content-Type 'application\/json'/],
    ['a body larger than --max-bytes', Buffer.alloc(MAX_BYTES + 1), '', 'image/jpeg', 413, new RegExp(`limit is ${MAX_BYTES} bytes`)],
  ])('refuses %s with a JSON error', async (_what, body, query, contentType, status, message) => {
    const response = await predict(body, query, contentType);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toMatchObject({ statusCode: status, message: expect.stringMatching(message) });
  });

  it('refuses crop=none for an image that is not square', async () => {
    const wide = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const response = await predict(wide, '?crop=none', 'image/png');
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/crop 'none' needs a square image, got 64x48/);
  });

  it('refuses a body without a Content-Type with 415', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/predict', body: photo });
    expect(response.statusCode).toBe(415);
    expect(response.json().message).toMatch(/no Content-Type/);
  });

  it('keeps serving after bad requests, including ones in flight together with good ones', async () => {
    const responses = await Promise.all([predict('junk'), predict(photo), predict(bombPng(), '', 'image/png'), predict(photo)]);
    expect(responses.map((r) => r.statusCode)).toEqual([400, 200, 400, 200]);
    const after = await predict(photo);
    expect(after.statusCode).toBe(200);
    expect(after.json().probabilities).toEqual(responses[1]!.json().probabilities);
  });

  it('turns requests away with 503 and Retry-After while the queue is full', async () => {
    const small = await createServer(untrainedRun(1), { maxQueued: 1 });
    try {
      const responses = await Promise.all([1, 2, 3, 4].map(() => predict(photo, '', 'image/jpeg', small)));
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses[0]).toBe(200);
      const busy = responses.filter((r) => r.statusCode === 503);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy[0]!.headers['retry-after']).toBe('1');
      expect(busy[0]!.json().message).toMatch(/busy: 1 waiting to be graded \(at most 1\)/);
      expect((await predict(photo, '', 'image/jpeg', small)).statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('answers 500 with the reason, never a grade, when the model gives no probabilities', async () => {
    const overflowing = await createServer(untrainedRun(1, { weightScale: 1e30 }));
    try {
      const response = await predict(photo, '', 'image/jpeg', overflowing);
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: expect.stringMatching(
          /^the model gave NaN as the probability of grade 0 for image 1: its weights are damaged or diverged/,
        ),
      });
      expect((await overflowing.inject('/health')).statusCode).toBe(200);
    } finally {
      await overflowing.close();
    }
  });

  it('stops a worker that does not grade in time: 500 for the request, 503 from /health', async () => {
    const stuck = await createServer(untrainedRun(1), { gradingDeadlineMs: 1 });
    try {
      const response = await predict(photo, '', 'image/jpeg', stuck);
      expect(response.statusCode).toBe(500);
      expect(response.json().message).toBe('the prediction worker has stopped; restart the server');
      expect((await stuck.inject('/health')).statusCode).toBe(503);
    } finally {
      await stuck.close();
    }
  });
});

describe('the other routes', () => {
  it('GET /v1/model describes the loaded model and its metrics', async () => {
    expect((await app.inject('/v1/model')).json()).toEqual({
      model: 'cnn',
      width: 8,
      input_size: 28,
      ensemble: 1,
      grades: ['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR'],
      metrics: { val: { acc: 0.5, auc: 0.7, qwk: 0.4 }, test: { acc: 0.55, auc: 0.72, qwk: 0.45 } },
      browser_grading: true,
      calibration: null, // an untrained run has no calibration.json
      precision: 'fp32',
      disclaimer: NOT_FOR_CLINICAL_USE,
    });
    expect((await ensembleApp.inject('/v1/model')).json()).toMatchObject({ ensemble: 2, metrics: null });
  });

  it('serves what the page grades with in the browser: the model as raw-pixel ONNX and onnxruntime-web', async () => {
    const model = await app.inject('/v1/model.onnx');
    expect(model.statusCode).toBe(200);
    expect(model.headers['content-type']).toBe('application/octet-stream');
    const runtime = await ort.InferenceSession.create(model.rawPayload);
    const out = await runtime.run({ image: new ort.Tensor('uint8', new Uint8Array(28 * 28 * 3), [1, 28, 28, 3]) });
    expect(out.probabilities!.dims).toEqual([1, 5]);
    await runtime.release();
    const wasm = await app.inject('/ort/ort-wasm-simd-threaded.wasm');
    expect(wasm.headers['content-type']).toBe('application/wasm');
    expect([...wasm.rawPayload.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]); // \0asm
    expect((await app.inject('/ort/ort.wasm.min.js')).statusCode).toBe(200);
    for (const other of ['ort.node.min.js', '..%2Fpackage.json', '%2E%2E%2F%2E%2E%2Fpackage.json']) {
      expect((await app.inject(`/ort/${other}`)).statusCode, other).toBe(404);
    }
  });

  it('says when a model cannot grade in the browser', async () => {
    const ordinal = untrainedRun(1, {
      modelConfig: ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5, outputs: 4 }),
      loss: LossConfigSchema.parse({ kind: 'ordinal' }),
    });
    const server = await createServer(ordinal);
    try {
      const response = await server.inject('/v1/model.onnx');
      expect(response.statusCode).toBe(404);
      expect(response.json().message).toMatch(/cannot grade in the browser: .*CumulativeOrdinal/);
    } finally {
      await server.close();
    }
  });

  it('GET /health answers ok', async () => {
    const response = await app.inject('/health');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('GET / is a self-contained page with the not-for-clinical-use notice', async () => {
    const response = await app.inject('/');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(response.body).toContain(NOT_FOR_CLINICAL_USE);
    expect(response.body).toMatch(/<label for="file"/);
    expect(response.body).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
  });

  it('unknown routes are 404 with a JSON message', async () => {
    const response = await app.inject('/v2/predict');
    expect(response.statusCode).toBe(404);
    expect(response.json().message).toMatch(/no route GET \/v2\/predict/);
  });

  it('a known route with another method is 405 with Allow', async () => {
    const response = await app.inject('/v1/predict');
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('POST');
    expect(response.json().message).toBe('GET /v1/predict is not served: use POST');
    expect((await app.inject({ method: 'POST', url: '/health' })).headers.allow).toBe('GET, HEAD');
    expect((await app.inject({ method: 'HEAD', url: '/v1/predict' })).statusCode).toBe(405);
  });
});

describe('createServer', () => {
  it('serves over real HTTP on a port the system picks', async () => {
    const server = await createServer(untrainedRun(1));
    try {
      const url = await server.listen({ host: '127.0.0.1', port: 0 });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: 'ok' });
      const response = await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
      expect(response.status).toBe(200);
      expect((await response.json()).disclaimer).toBe(NOT_FOR_CLINICAL_USE);
    } finally {
      await server.close();
    }
  });

  it('keeps serving when clients hang up while their photographs wait', async () => {
    const server = await createServer(untrainedRun(1));
    try {
      const url = new URL(await server.listen({ host: '127.0.0.1', port: 0 }));
      // Send whole requests, then hang up before the answers.
      await Promise.all(
        Array.from(
          { length: 6 },
          () =>
            new Promise<void>((done) => {
              const request = httpRequest({
                host: url.hostname,
                port: url.port,
                path: '/v1/predict',
                method: 'POST',
                headers: { 'content-type': 'image/jpeg' },
              });
              request.on('error', () => done());
              request.end(photo, () => {
                request.destroy();
                done();
              });
            }),
        ),
      );
      const response = await fetch(`${url.origin}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
      expect(response.status).toBe(200);
      expect(await (await fetch(`${url.origin}/health`)).json()).toEqual({ status: 'ok' });
    } finally {
      await server.close();
    }
  });

  it('answers on loopback only to loopback Host names with its port (DNS rebinding), every answer with nosniff', async () => {
    const server = await createServer(untrainedRun(1));
    try {
      const url = new URL(await server.listen({ host: '127.0.0.1', port: 0 }));
      const get = (host: string) =>
        new Promise<{ status: number; body: string; nosniff: unknown }>((done, fail) => {
          const request = httpRequest({ host: '127.0.0.1', port: url.port, path: '/health', headers: { host } }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk));
            response.on('end', () => done({ status: response.statusCode!, body, nosniff: response.headers['x-content-type-options'] }));
          });
          request.on('error', fail).end();
        });
      for (const host of [`localhost:${url.port}`, `127.0.0.1:${url.port}`, `[::1]:${url.port}`, `LOCALHOST:${url.port}`]) {
        expect(await get(host), host).toMatchObject({ status: 200, nosniff: 'nosniff' });
      }
      for (const host of [
        `evil.example:${url.port}`,
        'localhost',
        `localhost:${Number(url.port) + 1}`,
        `localhost:${url.port}@evil.example`,
      ]) {
        const refused = await get(host);
        expect(refused, host).toMatchObject({ status: 403, nosniff: 'nosniff' });
        expect(JSON.parse(refused.body).message).toMatch(
          /is not this server: .* answers only localhost, 127\.0\.0\.1 or \[::1\] with port/,
        );
      }
    } finally {
      await server.close();
    }
  });

  it('refuses before reading a body it cannot queue: a client that never sends its body still gets 503', async () => {
    const server = await createServer(untrainedRun(1), { maxBytes: MAX_BYTES, maxBytesInFlight: 2 * MAX_BYTES });
    try {
      const url = new URL(await server.listen({ host: '127.0.0.1', port: 0 }));
      // Three uploads announce their size and send nothing more: two fit the byte budget and wait
      // for their bodies; the third is answered from its headers alone.
      const statuses = await Promise.all(
        [1, 2, 3].map(
          (i) =>
            new Promise<number | 'pending'>((done) => {
              const request = httpRequest({
                host: '127.0.0.1',
                port: url.port,
                path: '/v1/predict',
                method: 'POST',
                headers: { 'content-type': 'image/jpeg', 'content-length': String(MAX_BYTES) },
              });
              request.on('response', (response) => done(response.statusCode!));
              request.on('error', () => {});
              request.flushHeaders();
              setTimeout(
                () => {
                  done('pending');
                  request.destroy();
                },
                500 + 100 * i,
              );
            }),
        ),
      );
      expect(statuses.sort()).toEqual([503, 'pending', 'pending']);
      // Their budget is released when they hang up.
      await new Promise((done) => setTimeout(done, 100));
      const response = await fetch(`${url.origin}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
      expect(response.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses a --max-bytes above its ceiling, naming the flag and the ceiling', async () => {
    const error = await createServer(untrainedRun(1), { maxBytes: MAX_MAX_BYTES + 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(`--max-bytes must be an integer from 1 to ${MAX_MAX_BYTES} (256 MiB), got ${MAX_MAX_BYTES + 1}`);
  });

  it("grades at the run's precision, or at the one asked for where this CPU has it, and says which in /v1/model", async () => {
    const runDir = untrainedRun(1);
    const single = async (open: { precision?: 'bf16' }) => {
      const server = await createServer(runDir, { open, workers: 1 });
      try {
        const model = (await server.inject({ url: '/v1/model' })).json();
        const graded = await server.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/jpeg' }, body: photo });
        return { model, probabilities: graded.json().probabilities as number[] };
      } finally {
        await server.close();
      }
    };
    const trained = await single({});
    expect(trained.model.precision).toBe('fp32');
    expect(trained.model.precision_fallback).toBeUndefined();
    const asked = await single({ precision: 'bf16' });
    const expected = resolvePrecision('bf16');
    expect(asked.model.precision).toBe(expected.precision);
    expect(asked.model.precision_fallback).toBe(expected.fallback);
    // bf16 rounds the activations: close to the fp32 grade's probabilities, not equal to them.
    for (const [g, p] of asked.probabilities.entries()) expect(Math.abs(p - trained.probabilities[g]!)).toBeLessThan(0.05);
    if (expected.precision === 'bf16') expect(asked.probabilities).not.toEqual(trained.probabilities);
  });

  it('refuses an unfinished run, and with allowUnfinished says so in /v1/model and in every prediction', async () => {
    const run = new RunDir(untrainedRun(1));
    run.writeJson('config', { epochs: 5, ensemble: 1 }); // training, no epoch checkpointed yet
    const error = await createServer(run.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(`retinagrade train --out ${run.path} --resume`);
    const server = await createServer(run.path, { open: { allowUnfinished: true } });
    try {
      const model = (await server.inject({ url: '/v1/model' })).json();
      expect(model.unfinished).toMatch(/^unfinished run \(0 of 5 epochs done\)/);
      const body = readFileSync(join(samples, 'fundus_a.jpg'));
      const predicted = await server.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/jpeg' }, body });
      expect(predicted.json().warnings[0]).toBe(model.unfinished);
    } finally {
      await server.close();
    }
  });

  it('refuses a folder that is not a run directory', async () => {
    // A UserError: the CLI prints it as one line and exits 1.
    const error = await createServer(tmpdir()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/not a finished run directory/);
  });
});
