// Runs once before the suite: numpy writes the .npy/.npz fixtures the npz reader is checked
// against (test/fixtures/data/make_npz_fixtures.py) into a temporary folder, so the repository
// holds the script, not binary data. Test processes inherit NPZ_FIXTURES_DIR.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3'; // Debian's, with python3-numpy (scripts/setup.sh installs it)

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'retinagrade-npz-fixtures-'));
  try {
    execFileSync(PYTHON, [join(import.meta.dirname, 'fixtures/data/make_npz_fixtures.py'), dir], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `could not write the numpy fixtures with ${PYTHON} (is python3-numpy installed? run scripts/setup.sh): ${(error as Error).message}`,
    );
  }
  process.env.NPZ_FIXTURES_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
