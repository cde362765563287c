// Downloads against a local HTTP server on 127.0.0.1 that misbehaves on purpose; never the internet.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { datasetUrl, downloadDataset, downloadFile, type DownloadProgress } from '../../src/data/download.js';

const root = mkdtempSync(join(tmpdir(), 'retinagrade-download-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(root, `d${dirCount++}`);

// 256 KiB of deterministic noise: several network chunks, so a cut lands mid-body.
const CONTENT = Buffer.alloc(256 * 1024);
for (let i = 0, x = 1; i < CONTENT.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  CONTENT[i] = x >>> 24;
}
const CONTENT_MD5 = createHash('md5').update(CONTENT).digest('hex');
const HALF = CONTENT.length / 2;

interface Seen {
  path: string;
  range: string | undefined;
}
type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((done) => server?.close(done) ?? done(undefined));
  server = undefined;
});

/** Starts a server on an ephemeral port; `handler` gets the 0-based index of each request. */
async function serve(handler: Handler): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', range: req.headers.range });
    handler(req, res, seen.length - 1);
  });
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  return { base: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

interface SendOptions {
  body?: Buffer;
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange?: boolean;
  /** Send this many bytes of the response, then drop the connection. */
  cutAfter?: number;
  /** Send this many bytes, then go silent without closing. */
  stallAfter?: number;
}

/** Serves `body` honouring `Range: bytes=N-` unless told otherwise. */
function send(req: IncomingMessage, res: ServerResponse, options: SendOptions = {}) {
  const body = options.body ?? CONTENT;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let payload = body;
  if (range && !options.ignoreRange) {
    const start = Number(range[1]);
    payload = body.subarray(start);
    res.writeHead(206, { 'content-length': payload.length, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  } else {
    res.writeHead(200, { 'content-length': body.length });
  }
  const stopAt = options.cutAfter ?? options.stallAfter;
  if (stopAt === undefined) {
    res.end(payload);
    return;
  }
  res.write(payload.subarray(0, stopAt), () => {
    // Give the client time to read what was sent before the connection goes away.
    if (options.cutAfter !== undefined) setTimeout(() => res.socket?.destroy(), 50);
  });
}

const fast = { backoffMs: () => 1 };

describe('downloadFile', () => {
  it('downloads, verifies and moves the file into place, reporting progress', async () => {
    const { base, seen } = await serve((req, res) => send(req, res));
    const destination = join(freshDir(), 'file.npz');
    const progress: DownloadProgress[] = [];
    const onProgress = (p: DownloadProgress) => progress.push(p);
    const result = await downloadFile({ url: `${base}/file.npz`, destination, md5: CONTENT_MD5, ...fast, onProgress });
    expect(readFileSync(destination).equals(CONTENT)).toBe(true);
    expect(result).toMatchObject({ path: destination, bytes: CONTENT.length, md5: CONTENT_MD5, verified: true });
    expect(result).toMatchObject({ alreadyPresent: false, warnings: [] });
    expect(seen).toEqual([{ path: '/file.npz', range: undefined }]);
    expect(progress.at(-1)).toEqual({ bytes: CONTENT.length, total: CONTENT.length });
    expect(progress.length).toBeGreaterThan(2);
    expect(readdirSync(join(destination, '..'))).toEqual(['file.npz']);

    const again = await downloadFile({ url: `${base}/file.npz`, destination, md5: CONTENT_MD5, ...fast });
    expect(again.alreadyPresent).toBe(true);
    expect(seen.length).toBe(1);
  });

  it('resumes with a Range request after the connection is cut halfway', async () => {
    const { base, seen } = await serve((req, res, i) => send(req, res, i === 0 ? { cutAfter: HALF } : {}));
    const destination = join(freshDir(), 'file.npz');
    const progress: DownloadProgress[] = [];
    await downloadFile({ url: `${base}/file.npz`, destination, md5: CONTENT_MD5, ...fast, onProgress: (p) => progress.push(p) });
    expect(readFileSync(destination).equals(CONTENT)).toBe(true);
    expect(seen.map((s) => s.range)).toEqual([undefined, `bytes=${HALF}-`]);
    // The second attempt starts where the first stopped, not at zero.
    expect(progress.filter((p) => p.bytes === HALF).length).toBeGreaterThanOrEqual(2);
    expect(progress.some((p, i) => i > 0 && p.bytes < progress[i - 1]!.bytes)).toBe(false);
  });

  it('starts over when the server ignores Range and sends the whole file', async () => {
    const { base, seen } = await serve((req, res, i) => send(req, res, i === 0 ? { cutAfter: HALF } : { ignoreRange: true }));
    const destination = join(freshDir(), 'file.npz');
    await downloadFile({ url: `${base}/file.npz`, destination, md5: CONTENT_MD5, ...fast });
    expect(seen[1]!.range).toBe(`bytes=${HALF}-`);
    expect(readFileSync(destination).equals(CONTENT)).toBe(true);
  });

  it('retries after a stall and resumes', async () => {
    const { base, seen } = await serve((req, res, i) => send(req, res, i === 0 ? { stallAfter: HALF } : {}));
    const destination = join(freshDir(), 'file.npz');
    await downloadFile({ url: `${base}/file.npz`, destination, md5: CONTENT_MD5, ...fast, idleTimeoutMs: 300 });
    expect(seen.map((s) => s.range)).toEqual([undefined, `bytes=${HALF}-`]);
    expect(readFileSync(destination).equals(CONTENT)).toBe(true);
  });

  it('retries 5xx answers with backoff, then succeeds', async () => {
    const waits: number[] = [];
    const { base, seen } = await serve((req, res, i) => (i < 2 ? res.writeHead(500).end() : send(req, res)));
    const destination = join(freshDir(), 'file.npz');
    await downloadFile({
      url: `${base}/file.npz`,
      destination,
      md5: CONTENT_MD5,
      backoffMs: (retry) => {
        waits.push(retry);
        return 1;
      },
    });
    expect(seen.length).toBe(3);
    expect(waits).toEqual([1, 2]);
    expect(readFileSync(destination).equals(CONTENT)).toBe(true);
  });

  it('gives up after the last retry with instructions for doing it by hand', async () => {
    const { base, seen } = await serve((_req, res) => res.writeHead(503).end());
    const dir = freshDir();
    const attempt = downloadFile({ url: `${base}/file.npz`, destination: join(dir, 'file.npz'), md5: CONTENT_MD5, retries: 2, ...fast });
    await expect(attempt).rejects.toThrow(
      `could not download ${base}/file.npz after 3 attempts: server answered 503 Service Unavailable.\n` +
        `To get it by hand: download\n  ${base}/file.npz\ncheck that its md5 is ${CONTENT_MD5}, and put it in ${dir} as file.npz.`,
    );
    expect(seen.length).toBe(3);
  });

  it('does not retry a 404', async () => {
    const { base, seen } = await serve((_req, res) => res.writeHead(404).end());
    const attempt = downloadFile({ url: `${base}/nope.npz`, destination: join(freshDir(), 'nope.npz'), ...fast });
    await expect(attempt).rejects.toThrow(/^could not download .*\/nope\.npz: server answered 404 Not Found\.\nTo get it by hand/);
    expect(seen.length).toBe(1);
  });

  it('refuses to overwrite an existing file whose md5 is wrong', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const destination = join(dir, 'file.npz');
    writeFileSync(destination, 'not it');
    // The check comes before any request, so the URL is never contacted.
    await expect(downloadFile({ url: 'http://127.0.0.1:9/unused', destination, md5: CONTENT_MD5 })).rejects.toThrow(
      `${destination} already exists but its md5 is ${createHash('md5').update('not it').digest('hex')}, expected ${CONTENT_MD5}`,
    );
    expect(readFileSync(destination, 'utf8')).toBe('not it');
  });
});

describe('downloadDataset', () => {
  it('deletes a download whose md5 is wrong and leaves nothing in place', async () => {
    const { base } = await serve((req, res) => send(req, res));
    const dir = freshDir();
    const attempt = downloadDataset({ dataset: 'retinamnist', size: 28, dir, mirror: base, ...fast });
    await expect(attempt).rejects.toThrow(
      `downloaded ${base}/retinamnist.npz but its md5 is ${CONTENT_MD5}, expected bd4c0672f1bba3e3a89f0e4e876791e4; ` +
        'the download was deleted.\nTo get it by hand: download\n' +
        `  ${base}/retinamnist.npz\n  or https://zenodo.org/records/10519652/files/retinamnist.npz?download=1\n` +
        `check that its md5 is bd4c0672f1bba3e3a89f0e4e876791e4, and put it in ${dir} as retinamnist.npz.`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('fetches from a mirror base URL, and warns when no md5 is recorded', async () => {
    const { base, seen } = await serve((req, res) => send(req, res));
    const dir = freshDir();
    const url = datasetUrl('retinamnist', 224, `${base}/mirror/medmnist`);
    const result = await downloadFile({ url, destination: join(dir, 'retinamnist_224.npz'), ...fast });
    expect(seen.map((s) => s.path)).toEqual(['/mirror/medmnist/retinamnist_224.npz']);
    expect(result.path).toBe(join(dir, 'retinamnist_224.npz'));
    expect(result.verified).toBe(false);
    expect(result.warnings).toEqual([`no md5 is recorded for retinamnist_224.npz: it was not verified (its md5 is ${CONTENT_MD5})`]);
    expect(readFileSync(result.path).equals(CONTENT)).toBe(true);
  });

  it('builds mirror URLs by appending the file name to the base', () => {
    expect(datasetUrl('retinamnist', 64)).toBe('https://zenodo.org/records/10519652/files/retinamnist_64.npz?download=1');
    expect(datasetUrl('retinamnist', 64, 'http://host/medmnist')).toBe('http://host/medmnist/retinamnist_64.npz');
    expect(datasetUrl('retinamnist', 64, 'http://host/medmnist/')).toBe('http://host/medmnist/retinamnist_64.npz');
    expect(() => datasetUrl('retinamnist', 64, 'host/medmnist')).toThrow("invalid mirror URL 'host/medmnist'");
    expect(() => datasetUrl('retinamnist', 64, 'ftp://host/')).toThrow('expected http:// or https://');
  });
});
