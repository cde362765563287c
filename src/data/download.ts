// Downloads a MedMNIST file the way a flaky network needs: into `<file>.part`, resuming with an
// HTTP Range request after a cut, retrying network errors and 5xx with exponential backoff,
// and moving the file into place only when it is whole and its md5 is right.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import { getDatasetFile, type ImageSize } from './registry.js';

export interface DownloadProgress {
  /** Bytes of the file on disk so far, including a resumed part. */
  bytes: number;
  /** Whole file size when the server says it. */
  total: number | undefined;
}

export interface DownloadFileOptions {
  url: string;
  /** Final path; the download goes to `<destination>.part` until it is verified. */
  destination: string;
  /** Expected md5 (hex). Without it the file is kept unverified, with a warning. */
  md5?: string | undefined;
  /** Retries after the first attempt, for network errors, stalls and 5xx answers. Default 4. */
  retries?: number;
  /** Wait before retry number `retry` (1-based). Default 1 s, 2 s, 4 s, ... */
  backoffMs?: (retry: number) => number;
  /** An attempt with no data for this long is abandoned and retried. Default 60 s. */
  idleTimeoutMs?: number;
  onProgress?: (progress: DownloadProgress) => void;
  /** Offered in the by-hand instructions too, when it differs from `url` (e.g. behind a mirror). */
  officialUrl?: string;
}

export interface DownloadResult {
  path: string;
  url: string;
  bytes: number;
  md5: string;
  /** False when no md5 was known to check against. */
  verified: boolean;
  /** True when a verified file was already in place and nothing was fetched. */
  alreadyPresent: boolean;
  warnings: string[];
}

/** A failure that retrying cannot fix (e.g. 404). */
class PermanentFailure extends Error {}

export async function downloadFile(options: DownloadFileOptions): Promise<DownloadResult> {
  const { url, destination, md5 } = options;
  const retries = options.retries ?? 4;
  const backoffMs = options.backoffMs ?? ((retry: number) => 1000 * 2 ** (retry - 1));
  const expectedMd5 = md5?.toLowerCase();
  const byHand = byHandInstructions(options);
  const warnings: string[] = [];
  const result = (bytes: number, actualMd5: string, alreadyPresent: boolean): DownloadResult => {
    if (expectedMd5 === undefined) {
      warnings.push(`no md5 is recorded for ${basename(destination)}: it was not verified (its md5 is ${actualMd5})`);
    }
    const verified = expectedMd5 !== undefined;
    return { path: destination, url, bytes, md5: actualMd5, verified, alreadyPresent, warnings };
  };

  const existing = await fileSize(destination);
  if (existing !== undefined) {
    const actualMd5 = await md5OfFile(destination);
    if (expectedMd5 !== undefined && actualMd5 !== expectedMd5) {
      throw new UserError(
        `${destination} already exists but its md5 is ${actualMd5}, expected ${expectedMd5}: delete or move it, then download again`,
      );
    }
    return result(existing, actualMd5, true);
  }

  await mkdir(dirname(destination), { recursive: true });
  const part = `${destination}.part`;
  let lastFailure: string | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt));
    try {
      await fetchIntoPart(url, part, options.idleTimeoutMs ?? 60_000, options.onProgress);
      lastFailure = undefined;
      break;
    } catch (error) {
      if (error instanceof PermanentFailure) {
        throw new UserError(`could not download ${url}: ${error.message}.\n${byHand}`);
      }
      lastFailure = describeError(error);
    }
  }
  if (lastFailure !== undefined) {
    throw new UserError(`could not download ${url} after ${retries + 1} attempts: ${lastFailure}.\n${byHand}`);
  }

  const actualMd5 = await md5OfFile(part);
  if (expectedMd5 !== undefined && actualMd5 !== expectedMd5) {
    await rm(part, { force: true });
    throw new UserError(`downloaded ${url} but its md5 is ${actualMd5}, expected ${expectedMd5}; the download was deleted.\n${byHand}`);
  }
  await rename(part, destination);
  return result((await fileSize(destination))!, actualMd5, false);
}

/**
 * One attempt: resumes `part` from its current length when the server honours Range, else
 * starts it over. Resolves when the body is complete; throws on anything short of that.
 */
async function fetchIntoPart(
  url: string,
  part: string,
  idleTimeoutMs: number,
  onProgress: ((progress: DownloadProgress) => void) | undefined,
): Promise<void> {
  const offset = (await fileSize(part)) ?? 0;
  const controller = new AbortController();
  const idleTimer = setTimeout(() => controller.abort(), idleTimeoutMs);
  let response: Response | undefined;
  try {
    response = await fetch(url, {
      signal: controller.signal,
      // Byte ranges refer to the encoded body: ask for it unencoded so offsets mean file offsets.
      headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
    });
    if (response.status === 416) {
      // The part is not a prefix the server recognises (e.g. the file changed): start over.
      await rm(part, { force: true });
      throw new Error('server refused to resume (416); starting over');
    }
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new Error(`server answered ${response.status} ${response.statusText}`);
    }
    if (!response.ok || !response.body) {
      throw new PermanentFailure(`server answered ${response.status} ${response.statusText}`);
    }

    let bytes = 0;
    let total = contentLength(response);
    if (response.status === 206) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== offset) {
        await rm(part, { force: true });
        const got = response.headers.get('content-range');
        throw new Error(`server resumed at the wrong place (${got}, expected byte ${offset}); starting over`);
      }
      bytes = offset;
      total = range[2] === '*' ? undefined : Number(range[2]);
    }
    // A 200 to a Range request means the server ignored it: the body is the whole file, so truncate.
    const file = await open(part, response.status === 206 ? 'a' : 'w');
    try {
      onProgress?.({ bytes, total });
      for await (const chunk of response.body) {
        idleTimer.refresh();
        await file.write(chunk);
        bytes += chunk.length;
        onProgress?.({ bytes, total });
      }
    } finally {
      await file.close();
    }
    if (total !== undefined && bytes !== total) {
      throw new Error(`connection closed at ${bytes} of ${total} bytes`);
    }
  } catch (error) {
    // Release the connection of an answer refused before its body was read.
    if (response?.body && !response.bodyUsed) await response.body.cancel().catch(() => {});
    if (controller.signal.aborted) throw new Error(`no data for ${idleTimeoutMs / 1000} s`);
    throw error;
  } finally {
    clearTimeout(idleTimer);
  }
}

function contentLength(response: Response): number | undefined {
  const header = response.headers.get('content-length');
  return header === null ? undefined : Number(header);
}

/** Node's fetch reports network errors as "fetch failed" with the real reason in `cause`. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function byHandInstructions({ url, officialUrl, destination, md5 }: DownloadFileOptions): string {
  const urls = officialUrl && officialUrl !== url ? `${url}\n  or ${officialUrl}` : url;
  const check = md5 ? `check that its md5 is ${md5}` : 'no md5 is recorded for it';
  return `To get it by hand: download\n  ${urls}\n${check}, and put it in ${dirname(destination)} ` + `as ${basename(destination)}.`;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function md5OfFile(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The URL to fetch a dataset file from. A mirror is a base URL that replaces the official
 * `https://zenodo.org/records/10519652/files/` prefix: the file name is appended after a slash,
 * e.g. `--mirror http://host/medmnist` fetches `http://host/medmnist/retinamnist_64.npz`.
 */
export function datasetUrl(dataset: string, size: number, mirror?: string): string {
  const file = getDatasetFile(dataset, size);
  if (mirror === undefined) return file.url;
  let base: URL;
  try {
    base = new URL(mirror.endsWith('/') ? mirror : `${mirror}/`);
  } catch {
    throw new UserError(`invalid mirror URL '${mirror}' (expected a base URL such as http://host/medmnist)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new UserError(`invalid mirror URL '${mirror}' (expected http:// or https://)`);
  }
  return new URL(file.fileName, base).href;
}

export interface DownloadDatasetOptions extends Pick<DownloadFileOptions, 'retries' | 'backoffMs' | 'idleTimeoutMs' | 'onProgress'> {
  dataset: string;
  size: ImageSize;
  /** Folder to put the file in (see locate.ts's defaultDataDir). */
  dir: string;
  /** Base URL replacing the official host and path; see datasetUrl. */
  mirror?: string;
}

/** Downloads a registry dataset file into `dir`, verified against the registry's md5. */
export async function downloadDataset(options: DownloadDatasetOptions): Promise<DownloadResult> {
  const { dataset, size, dir, mirror, ...rest } = options;
  const file = getDatasetFile(dataset, size);
  return downloadFile({
    ...rest,
    url: datasetUrl(dataset, size, mirror),
    officialUrl: file.url,
    destination: join(dir, file.fileName),
    md5: file.md5,
  });
}

export interface FirstUseOptions extends Pick<DownloadFileOptions, 'retries' | 'backoffMs' | 'onProgress'> {
  /** False refuses instead of downloading (--no-download). */
  download: boolean;
  /** Folder the file goes to (locate.ts's defaultDataDir). */
  dir: string;
  mirror?: string;
  /** Told before a download starts. */
  say?: (line: string) => void;
}

/**
 * What `locate` finds; when it finds nothing (a UserError naming where it looked), the dataset's
 * file is fetched into `dir` first, as medmnist's `download=True` does, and located again. With
 * `download: false`, or when the download fails, the error says how to get the file by hand.
 */
export async function locateOrDownload<T>(dataset: string, size: ImageSize, locate: () => T, options: FirstUseOptions): Promise<T> {
  try {
    return locate();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    if (!options.download) throw new UserError(`${error.message}\n(not downloaded: --no-download)`);
    const { download, dir, say, ...rest } = options;
    say?.(`${getDatasetFile(dataset, size).fileName} not found: downloading it into ${dir}`);
    await downloadDataset({ ...rest, dataset, size, dir });
    return locate();
  }
}
