#!/usr/bin/env bash
# Installs the npm packages the interop tests drive (an independent SPDY/3.1 implementation).
set -euo pipefail
dir="$(dirname "$0")/../tests/js"
[ -f "$dir/package.json" ] || exit 0
cd "$dir"
if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
  npm install --no-audit --no-fund --silent >/dev/null
  touch node_modules
fi
