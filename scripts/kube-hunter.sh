#!/bin/bash
# Install kube-hunter (Aqua Security's Kubernetes penetration-testing tool, from PyPI) into a
# virtualenv of its own, for tests/apiserver/test_kube_hunter.py. Not a dev extra: kube-hunter
# 0.6.8 pins kubernetes==12.0.1, which conflicts with the dev extras' kubernetes>=29.
#   PYKUBELET_KUBE_HUNTER_DIR (default /var/cache/pykubelet/kube-hunter): the virtualenv.
# Idempotent: a re-run with the pinned version installed does nothing.
set -eu
VERSION=0.6.8
DIR=${PYKUBELET_KUBE_HUNTER_DIR:-/var/cache/pykubelet/kube-hunter}
PY=${PYTHON:-python3}
if [ -x "$DIR/bin/kube-hunter" ] && "$DIR/bin/pip" show kube-hunter 2>/dev/null | grep -qx "Version: $VERSION"; then
  exit 0
fi
mkdir -p "$(dirname "$DIR")"
"$PY" -m venv "$DIR"
"$DIR/bin/pip" install -q --upgrade pip
"$DIR/bin/pip" install -q "kube-hunter==$VERSION"
"$DIR/bin/kube-hunter" --help >/dev/null
echo "kube-hunter $VERSION in $DIR"
