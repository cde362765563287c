// Where the bf16 weight gradient as one matrix product (native/src/small_map_conv.cc) beats
// libtorch's bf16 convolution: each convolution shape of ResNet-18 at 64 px and of the compact CNN
// at 28 px, trained one step at a time (forward under bf16 autocast, then the weight and input
// gradients), both ways. Each way runs in its own child process, the small-map threshold set
// through RETINAGRADE_SMALL_MAP_POSITIONS (0: libtorch's convolution throughout; a large number:
// the matrix product throughout), the two ways of a shape back to back, alternating which goes first.
//
//   npx tsx bench/engine/small-map-conv.ts [--batch 32] [--threads 1] [--steps 20]
import { fmt, intArg, median, oursCommand, parseArgs, runChild, runMain } from '../common.js';

/** [name, in channels, out channels, input side, kernel, stride, padding]. */
const SHAPES: [string, number, number, number, number, number, number][] = [
  ['ResNet-18@64 layer1 3x3', 64, 64, 16, 3, 1, 1],
  ['ResNet-18@64 layer2 3x3', 128, 128, 8, 3, 1, 1],
  ['ResNet-18@64 layer3 3x3', 256, 256, 4, 3, 1, 1],
  ['ResNet-18@64 layer4 3x3/2 in', 256, 512, 4, 3, 2, 1],
  ['ResNet-18@64 layer4 1x1/2 downsample', 256, 512, 4, 1, 2, 0],
  ['ResNet-18@64 layer4 3x3', 512, 512, 2, 3, 1, 1],
  ['CompactCnn@28 stage 1', 32, 32, 28, 3, 1, 1],
  ['CompactCnn@28 stage 2', 64, 64, 14, 3, 1, 1],
  ['CompactCnn@28 stage 3', 128, 128, 7, 3, 1, 1],
];

/** In the child: median ms of one training step of one shape's convolution. */
async function measureShape(args: Map<string, string>): Promise<void> {
  const torch = await import('../../src/torch/index.js');
  const [, cin, cout, side, kernel, stride, padding] = SHAPES[intArg(args, 'shape', 0)]!;
  const steps = intArg(args, 'steps', 20);
  torch.setNumThreads(intArg(args, 'threads', 1));
  const gen = new torch.Generator(0);
  const x = torch.keep(gen.normal([intArg(args, 'batch', 32), cin, side, side]));
  const w = torch.keep(gen.normal([cout, cin, kernel, kernel]).mul(0.05));
  x.requiresGrad = true;
  w.requiresGrad = true;
  const step = (): number => {
    const t0 = performance.now();
    torch.tidy(() => {
      torch
        .atPrecision('bf16', () => torch.conv2d(x, w, undefined, { stride, padding }))
        .sum()
        .backward();
      x.clearGrad();
      w.clearGrad();
    });
    return performance.now() - t0;
  };
  for (let i = 0; i < 5; i++) step();
  process.stdout.write(`${JSON.stringify({ ms: median(Array.from({ length: steps }, step)) })}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.has('shape')) return measureShape(args);
  const batch = intArg(args, 'batch', 32);
  const threads = intArg(args, 'threads', 1);
  const steps = intArg(args, 'steps', 20);
  const ways = { libtorch: '0', product: '1000000' };
  const lines = [
    `bf16 convolution training step (forward, weight and input gradients), batch ${batch}, ${threads} thread(s), median of ${steps} steps`,
    '',
    '| shape | output positions per image | libtorch ms | matrix-product weight gradient ms | product / libtorch |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const [index, [name, , , side, kernel, stride, padding]] of SHAPES.entries()) {
    const ms: Record<string, number> = {};
    const order = index % 2 === 0 ? (['libtorch', 'product'] as const) : (['product', 'libtorch'] as const);
    for (const way of order) {
      const [command, commandArgs] = oursCommand('bench/engine/small-map-conv.ts', [
        '--shape',
        String(index),
        '--batch',
        String(batch),
        '--threads',
        String(threads),
        '--steps',
        String(steps),
      ]);
      const { json } = await runChild(command, commandArgs, {
        RETINAGRADE_SMALL_MAP_POSITIONS: ways[way],
        OMP_NUM_THREADS: String(threads),
      });
      ms[way] = json.ms as number;
    }
    const positions = (Math.floor((side + 2 * padding - kernel) / stride) + 1) ** 2;
    lines.push(`| ${name} | ${positions} | ${fmt(ms.libtorch!, 2)} | ${fmt(ms.product!, 2)} | ${fmt(ms.product! / ms.libtorch!, 2)} |`);
    process.stderr.write(`${lines.at(-1)}\n`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

runMain(main);
