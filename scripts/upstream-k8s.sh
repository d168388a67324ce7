#!/bin/bash
# Build (once) the reference Kubernetes v1.20.2 stack the node-mode tests run against:
# kube-apiserver, etcd, kube-scheduler, kube-controller-manager, kubectl (scripts/upstream-k8s/).
# The work dir is a cache outside the checkout so a second CI run reuses the binaries:
#   PYKUBELET_UPSTREAM_DIR (default /var/cache/pykubelet/upstream-k8s).
# Idempotent: setup.sh skips every step whose result exists (a re-run takes about a second).
# Needs root and Debian's archive with source packages (apt-get source kubernetes).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
export UPSTREAM_K8S_DIR=${PYKUBELET_UPSTREAM_DIR:-/var/cache/pykubelet/upstream-k8s}
if [ "$(id -u)" != 0 ]; then
  echo "upstream-k8s: not root, skipping the reference stack (node-mode tests will skip)" >&2
  exit 0
fi
mkdir -p "$UPSTREAM_K8S_DIR"
exec "$HERE/upstream-k8s/setup.sh"
