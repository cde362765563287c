#!/usr/bin/env node
// The package's bin: runs the compiled CLI (`npm run build` makes dist/).
import { main } from '../dist/cli/main.js';

await main();
