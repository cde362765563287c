// The dataset fetched on first use, through the installed command, from a local HTTP server on
// 127.0.0.1 standing in for the official host (--mirror): downloaded once and md5-checked,
// refused with --no-download, and a bad or missing file leaves nothing behind but instructions.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeMedMNIST } from '../data/npz-writer.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin', 'retinagrade.js');
const dataDir = process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-first-use-'));

/** What the server answers for /real/, /wrong/ (a small npz whose md5 is not the official one) and anything else (404). */
const files: Record<string, Uint8Array> = {
  real: readFileSync(join(dataDir, 'retinamnist.npz')),
  wrong: fakeMedMNIST(28, 3, {
    train: { images: new Uint8Array(2 * 28 * 28 * 3).fill(90), labels: new Uint8Array([0, 1]) },
    val: { images: new Uint8Array(28 * 28 * 3), labels: new Uint8Array([2]) },
    test: { images: new Uint8Array(28 * 28 * 3), labels: new Uint8Array([3]) },
  }),
};
const requests: string[] = [];
const server = createServer((request, response) => {
  requests.push(request.url!);
  const body = files[request.url!.split('/')[1]!];
  if (body && request.url!.endsWith('/retinamnist.npz')) response.writeHead(200, { 'content-length': body.length }).end(body);
  else response.writeHead(404).end('not here');
});
let base = '';
beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

/** The command, run asynchronously so that the server in this process can answer it. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, CI: '1', MEDMNIST_DIR: '', HOME: work };
  const child = spawn(process.execPath, [bin, ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

describe('the dataset file on first use', () => {
  it('is downloaded into --data-dir when missing, md5-checked, and not fetched again', async () => {
    const dir = join(work, 'fresh');
    requests.length = 0;
    const first = await cli(['info', '--data-dir', dir, '--mirror', `${base}/real`, '--json']);
    expect(first.stderr).toContain(`retinamnist.npz not found: downloading it into ${dir}`);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).md5).toBe('bd4c0672f1bba3e3a89f0e4e876791e4');
    expect(readdirSync(dir)).toEqual(['retinamnist.npz']);
    const second = await cli(['info', '--data-dir', dir, '--mirror', `${base}/real`]);
    expect(second.code).toBe(0);
    expect(requests).toEqual(['/real/retinamnist.npz']);
  });

  it('is refused with --no-download, with the manual steps, and nothing is fetched', async () => {
    requests.length = 0;
    const info = await cli(['info', '--data-dir', join(work, 'none'), '--no-download', '--mirror', `${base}/real`]);
    expect(info.code).toBe(1);
    expect(info.stderr).toContain('retinamnist.npz (retinamnist at 28x28) not found. Looked in:');
    expect(info.stderr).toContain('retinagrade download --dataset retinamnist --size 28');
    expect(info.stderr).toContain('(not downloaded: --no-download)');
    expect(requests).toEqual([]);
    expect(existsSync(join(work, 'none'))).toBe(false);
  });

  it('a file whose md5 is not the official one is deleted, and train leaves no run folder', async () => {
    const dir = join(work, 'wrong');
    const out = join(work, 'run-on-wrong-data');
    const result = await cli(['train', '--epochs', '1', '--ensemble', '1', '--data-dir', dir, '--mirror', `${base}/wrong`, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/md5 is [0-9a-f]{32}, expected bd4c0672f1bba3e3a89f0e4e876791e4; the download was deleted/);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('a file the server does not have is one error with the by-hand instructions', async () => {
    const result = await cli(['info', '--data-dir', join(work, 'missing'), '--mirror', `${base}/elsewhere`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`could not download ${base}/elsewhere/retinamnist.npz`);
    expect(result.stderr).toContain('To get it by hand: download');
    expect(result.stderr).toContain('https://zenodo.org/records/10519652/files/retinamnist.npz');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
