// The retinagrade command run from the TypeScript sources (no build needed): the serving
// benchmark trains its run and starts its server with it, as a user would with `npx retinagrade`.
import { main } from '../../src/cli/main.js';

await main([process.argv[0]!, 'retinagrade', ...process.argv.slice(2)]);
