#!/usr/bin/env bash
# Fails when a tracked source line is longer than biome's lineWidth: the formatter cannot break
# long strings, so this catches what it leaves.
set -euo pipefail
cd "$(dirname "$0")/.."
width=$(node -p "require('./biome.json').formatter.lineWidth")
git ls-files -z -- '*.ts' '*.js' '*.mjs' '*.py' '*.sh' '*.cc' '*.h' '*.gyp' \
  | xargs -0 awk -v width="$width" '
      length > width { printf "%s:%d: %d characters (at most %d)\n", FILENAME, FNR, length, width; bad = 1 }
      END { exit bad }'
