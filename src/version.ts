// retinagrade's version, read from package.json (one level above src/ and dist/ alike), so that
// `--version`, metrics.json and the model card never disagree with the package.
import { readFileSync } from 'node:fs';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
