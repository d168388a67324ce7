#!/usr/bin/env bash
# Record the upstream kubelet v1.20.2's answers into tests/fixtures/upstream/ (README there).
#
# Uses the reference stack of scripts/upstream-k8s in its own work dir ($UPSTREAM_K8S_DIR, set
# up here when needed) in standalone mode: containerd + kubelet with static pods, no API server.
# The kubelet listens on the fixed ports 10250/10248, so this refuses to start when they are
# taken, and stops what it started (stop.sh, never --purge) when done or failed.
#   UPSTREAM_K8S_DIR=/some/dir scripts/record-upstream.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/scripts/upstream-k8s
OUT=${1:-$ROOT/tests/fixtures/upstream}
PY=${PYTHON:-$ROOT/.venv/bin/python}
export UPSTREAM_K8S_DIR=${UPSTREAM_K8S_DIR:-${TMPDIR:-/tmp}/upstream-diff}
. "$T/env.sh"

if [ -n "$(ss -Hltn '( sport = :10250 or sport = :10248 )')" ]; then
  echo "ports 10250/10248 are taken (ss -ltnp): another kubelet runs; not starting" >&2
  exit 1
fi
[ -f "$A/.setup-done" ] || "$T/setup.sh"
rm -f "$A"/manifests/*.yaml
"$T/start.sh" standalone
# stop.sh (without --purge, which would also remove the shared /upstream-k8s cgroup) leaves the
# stopped sandboxes' shm and netns mounts and the pods' volume mounts: unmount ours.
cleanup() {
  "$T/stop.sh"
  grep -oE " $A/(containerd/state|kubelet/pods)/[^ ]+" /proc/mounts | sort -r |
    while read -r m; do umount "$m" || true; done
}
trap cleanup EXIT
"$PY" -m devtools.upstream_diff record \
  --port 10250 --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
  --node "$NODE" --static-dir "$A/manifests" --manifests "$OUT/manifests" --out "$OUT"
echo "recorded into $OUT"
