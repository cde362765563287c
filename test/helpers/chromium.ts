// Debian's chromium (scripts/setup.sh installs it) driven by playwright-core, for the tests of
// the page and the report. CHROMIUM names another build.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`no browser at ${executablePath}: run scripts/setup.sh (apt chromium) or set CHROMIUM`);
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, args: ['--no-sandbox'] });
}
