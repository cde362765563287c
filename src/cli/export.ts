// `export`: a run's model as an ONNX file, for onnxruntime (Node, the browser) and other runtimes.
import { Option, type Command } from 'commander';
import { DEFAULT_OPSET, INPUT_STYLES, OPSETS, exportRun, type InputStyle } from '../export/onnx.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { integerChoice } from './options.js';

export function exportCommand(program: Command): void {
  program
    .command('export')
    .description("write a run's model as ONNX: batch norm folded, dynamic batch, probabilities out (an ensemble as one graph)")
    .requiredOption('--model <dir>', 'run directory written by `train`')
    .requiredOption('--out <file>', 'the .onnx file to write')
    .addOption(new Option('--opset <n>', 'ONNX opset').argParser(integerChoice(OPSETS)).default(DEFAULT_OPSET))
    .addOption(
      new Option('--input <style>', "'tensor': float32 NCHW in [-1, 1]; 'pixels': uint8 NHWC RGB, normalized in the graph")
        .choices(INPUT_STYLES)
        .default('tensor'),
    )
    .addHelpText(
      'after',
      `
Examples:
  retinagrade export --model runs/default --out retinagrade.onnx
  retinagrade export --model runs/default --out retinagrade-pixels.onnx --input pixels

${NOT_FOR_CLINICAL_USE}`,
    )
    .action((flags: { model: string; out: string; opset: number; input: InputStyle }) => {
      const summary = exportRun(flags.model, flags.out, { opset: flags.opset, input: flags.input });
      const members = summary.ensemble > 1 ? `, an ensemble of ${summary.ensemble}` : '';
      process.stdout.write(
        `wrote ${flags.out} (${(summary.bytes / 1e6).toFixed(1)} MB, opset ${summary.opset}, input '${summary.input}'): ` +
          `${summary.model.name} at ${summary.model.inputSize}x${summary.model.inputSize}${members}\n${NOT_FOR_CLINICAL_USE}\n`,
      );
    });
}
