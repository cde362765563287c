// What the page needs to grade inside the browser: the run's model as ONNX (raw-pixel input, so
// the page only crops and resizes) and onnxruntime-web's wasm build, served from node_modules so
// that the page loads nothing from elsewhere.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { exportOnnx } from '../export/onnx.js';
import { openRun, type OpenRunOptions } from '../model/open-run.js';

/** The files of onnxruntime-web's wasm-only build the page loads (no threads: they need cross-origin isolation). */
export const ORT_FILES: Record<string, string> = {
  'ort.wasm.min.js': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.mjs': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.wasm': 'application/wasm',
};

/** onnxruntime-web's dist/ folder, or undefined when it is not installed (the page then grades on the server only). */
function ortDirectory(): string | undefined {
  try {
    return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    return undefined;
  }
}

export class BrowserGrading {
  readonly #ortDir = ortDirectory();
  #model: Uint8Array | Error | undefined;

  constructor(
    private readonly runDir: string,
    private readonly openOptions: OpenRunOptions = {},
  ) {}

  get available(): boolean {
    return this.#ortDir !== undefined && !(this.#model instanceof Error);
  }

  /** One of ORT_FILES' bytes. */
  ortFile(name: keyof typeof ORT_FILES): Buffer {
    if (!this.#ortDir) throw new UserError('onnxruntime-web is not installed: the page can grade on the server only');
    return readFileSync(join(this.#ortDir, name));
  }

  /** The run's model as ONNX taking uint8 NHWC pixels; made on first use, then kept. */
  model(): Uint8Array {
    if (this.#model === undefined) {
      const opened = openRun(this.runDir, this.openOptions);
      try {
        this.#model = exportOnnx(opened, { input: 'pixels' });
      } catch (error) {
        this.#model = error as Error;
      } finally {
        opened.model.dispose();
      }
    }
    if (this.#model instanceof Error) throw new UserError(`this model cannot grade in the browser: ${this.#model.message}`);
    return this.#model;
  }
}
