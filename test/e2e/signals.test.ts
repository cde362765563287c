// Signals reach the work however the command was started: `npx retinagrade` and `npm start` run it
// as npm -> sh -> node, and the signal goes to the outermost process, as a terminal or a process
// manager sends it. Then: an interrupted run says how to continue, and a bare --resume finishes it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { untrainedRun } from '../helpers/untrained-run.js';

const root = resolve(import.meta.dirname, '../..');
const bin = join(root, 'bin', 'retinagrade.js');
const dataDir = process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data');
const work = mkdtempSync(join(tmpdir(), 'retinagrade-signals-'));
const env = { ...process.env, CI: '1' };
const quick = ['--arch', 'cnn', '--width', '8', '--ensemble', '1', '--threads', '1', '--data-dir', dataDir];

/** Started in a process group of its own, so that "nothing keeps running" can be checked for the whole group. */
function startGroup(command: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  started.push(child);
  return { child, output: () => output };
}
const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) if (groupAlive(child.pid!)) process.kill(-child.pid!, 'SIGKILL');
});

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const epochLogged = (run: string) => (): boolean =>
  existsSync(join(run, 'log.jsonl')) && readFileSync(join(run, 'log.jsonl'), 'utf8').includes('"epoch":1');

describe('signals to the outermost process', () => {
  it('npx retinagrade serve: SIGTERM to npx stops the server and leaves nothing running', async () => {
    const run = untrainedRun(1);
    const { child, output } = startGroup('npx', ['retinagrade', 'serve', '--model', run, '--port', '0', '--host', '127.0.0.1']);
    await until(() => /serving .* on http:\/\/127\.0\.0\.1:\d+/.test(output()), 'the server to listen');
    process.kill(child.pid!, 'SIGTERM');
    await until(() => !groupAlive(child.pid!), 'every process of the group to end', 10_000);
    expect(output()).toContain('SIGTERM, stopping');
  }, 60_000);

  it('npm start: SIGTERM to npm stops training with the resume command, and nothing keeps running', async () => {
    const out = join(work, 'npm-start');
    // npm start's script names its own --out; the last --out given wins.
    const { child, output } = startGroup('npm', ['start', '--', ...quick, '--epochs', '50', '--out', out]);
    await until(epochLogged(out), 'the first epoch');
    process.kill(child.pid!, 'SIGTERM');
    await until(() => !groupAlive(child.pid!), 'every process of the group to end', 10_000);
    expect(output()).toContain(`stopped by SIGTERM; ${out} keeps the run`);
    expect(output()).toContain(`retinagrade train --out ${out} --resume`);
  }, 120_000);
});

describe('an interrupted run', () => {
  it('says how to continue on SIGINT, is refused until finished or allowed, and a bare --resume finishes it', async () => {
    const out = join(work, 'interrupted');
    const { child, output } = startGroup(process.execPath, [bin, 'train', ...quick, '--epochs', '2', '--out', out]);
    const exited = new Promise<number | null>((done) => child.on('exit', done));
    await until(epochLogged(out), 'the first epoch');
    process.kill(child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    const printed = /Continue it with:\n {2}(retinagrade train .*)\n/.exec(output());
    expect(printed?.[1]).toBe(`retinagrade train --out ${out} --resume --data-dir ${dataDir}`);

    const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env });
    const refused = cli(['evaluate', '--model', out, '--data-dir', dataDir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /holds an unfinished run \(\d of 2 epochs done\)\. Finish it with:\n {2}retinagrade train --out .* --resume/,
    );
    const allowed = cli(['evaluate', '--model', out, '--data-dir', dataDir, '--allow-unfinished', '--json']);
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout).unfinished).toMatch(/^unfinished run \(\d of 2 epochs done\): weights of epoch \d, not final$/);
    const predicted = cli(['predict', '--model', out, '--allow-unfinished', '--json', join(dataDir, '../samples/fundus_a.jpg')]);
    expect(JSON.parse(predicted.stdout).predictions[0].warnings[0]).toMatch(/^unfinished run/);

    const resumed = cli(printed![1]!.split(' ').slice(1));
    expect(resumed.status).toBe(0);
    expect(readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(cli(['evaluate', '--model', out, '--data-dir', dataDir]).status).toBe(0);
  }, 120_000);
});
