#!/usr/bin/env bash
# Installs the npm packages the interop tests drive (an independent SPDY/3.1 implementation).
set -euo pipefail
cd "$(dirname "$0")/../tests/js"
[ -f package.json ] || exit 0
if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
  npm install --no-audit --no-fund --silent >/dev/null
  touch node_modules
fi
