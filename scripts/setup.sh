#!/usr/bin/env bash
# Everything a fresh Debian machine needs: libtorch (the engine) and oneDNN's headers, the PyTorch peer used by
# benchmarks, fixture checks and interop/, ONNX's checker, chromium (the web page's and the report's browser tests), the
# DejaVu fonts (captions on Grad-CAM pictures and montages), Node packages, the native binding and
# the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  libtorch-dev libgloo-dev libdnnl-dev python3-torch python3-torchvision python3-sklearn python3-numpy python3-pil python3-onnx chromium
  fonts-dejavu-core
)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "${LIBTORCH:-}" ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: apt-get is not available to install ${missing[*]}." >&2
    echo "setup: install libtorch >= 1.13 yourself and run again with LIBTORCH=/path/to/libtorch" >&2
    exit 1
  fi
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The package's install script builds the binding when none loads; ONNXRUNTIME_NODE_INSTALL=skip:
# onnxruntime-node (tests only) keeps its bundled CPU build instead of downloading GPU libraries.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
npm run build
