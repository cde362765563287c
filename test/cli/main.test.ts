import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';

describe('--help', () => {
  const commands = buildProgram().commands;

  it('describes every option of every command', () => {
    for (const command of commands) {
      for (const option of command.options) {
        if (!option.hidden) expect(option.description, `${command.name()} ${option.long}`).not.toBe('');
      }
    }
  });

  it("shows a default for every option of train that sets the run configuration, read from the schema or commander's", () => {
    const train = commands.find((c) => c.name() === 'train')!;
    const noDefault = [
      '--out',
      '--config',
      '--data-dir',
      '--mirror',
      '--model',
      '--resume',
      '--overwrite',
      '--print-config',
      '--json',
      '--help',
    ];
    for (const option of train.options.filter((o) => !noDefault.includes(o.long!))) {
      expect(`${option.description} ${option.defaultValue ?? ''}`, option.long).toMatch(/\(default: .+\)/);
    }
  });
});
