#!/usr/bin/env bash
# `make run`: a standalone pykubelet on this machine running examples/pods/*.yaml.
# Idempotent: the busybox image, the certificates and the policy are created once in RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="$(realpath -m "${1:-$PWD/run}")"
BIN="$PWD/.venv/bin"
NODE="$(hostname | tr '[:upper:]' '[:lower:]')"
ROOT="$RUN_DIR/root"
PKI="$RUN_DIR/pki"
PORT="${PORT:-10250}"
HEALTHZ_PORT="${HEALTHZ_PORT:-10248}"
PODS="${PODS:-$PWD/examples/pods}"
EXTRA=()
[ -n "${CGROUP_ROOT:-}" ] && EXTRA+=(--cgroup-root "$CGROUP_ROOT")
mkdir -p "$RUN_DIR" "$ROOT" "$PKI"

# 1. The example pods use `busybox`: built from Debian's busybox-static, imported once.
if ! "$BIN/pykubelet" images list --root-dir "$ROOT" 2>/dev/null | grep -q busybox; then
  echo "== building the busybox image from /bin/busybox and importing it"
  "$BIN/python" - "$RUN_DIR/busybox.tar" <<'PY'
import sys
from pathlib import Path
from devtools.busybox_image import build_busybox_image
build_busybox_image(Path(sys.argv[1]), ref="docker.io/library/busybox:latest")
PY
  "$BIN/pykubelet" images import --root-dir "$ROOT" "$RUN_DIR/busybox.tar"
fi

# 2. A CA, the node's serving certificate, and a client certificate for you.
[ -f "$PKI/ca.crt" ] || "$BIN/pykubelet" certs ca --dir "$PKI" >/dev/null
[ -f "$PKI/kubelet.crt" ] || "$BIN/pykubelet" certs serving --dir "$PKI" --node-name "$NODE" >/dev/null
[ -f "$PKI/admin.crt" ] || "$BIN/pykubelet" certs client admin --group system:masters --dir "$PKI" >/dev/null

# 3. The authorization policy (RBAC-style): admin may do everything.
if [ ! -f "$RUN_DIR/policy.yaml" ] && [ -f examples/policy.yaml ]; then
  cp examples/policy.yaml "$RUN_DIR/policy.yaml"
fi

# 4. The banner only once the API listens (a "try: curl" that fails would mislead): a detached
#    watcher prints it, while the agent itself runs in the foreground (signals, exit status).
AGENT=$$   # the pid `exec` below hands to the agent
( (
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$AGENT" 2>/dev/null || exit 0   # it failed to start and said why, in one line
    sleep 0.1
  done
  cat <<INFO
== pykubelet standalone node "$NODE"
   pods:    $PODS (edit, add or remove files: changes apply within a second)
   logs:    $ROOT/logs/pods
   try:     curl --cacert $PKI/ca.crt --cert $PKI/admin.crt --key $PKI/admin.key https://127.0.0.1:$PORT/pods
   logs:    curl --cacert $PKI/ca.crt --cert $PKI/admin.crt --key $PKI/admin.key "https://127.0.0.1:$PORT/containerLogs/default/counter-$NODE/count?tailLines=5"
   audit:   $RUN_DIR/audit.log (one audit.k8s.io/v1 Event per request)
   check:   $BIN/pykubelet doctor --config examples/standalone.yaml --client-ca-file $PKI/ca.crt --tls-cert-file $PKI/kubelet.crt --tls-private-key-file $PKI/kubelet.key --audit-log-path $RUN_DIR/audit.log --url https://127.0.0.1:$PORT
   stop:    Ctrl-C (containers keep running; the next \`make run\` adopts them)
INFO
) & )
exec "$BIN/pykubelet" run --config examples/standalone.yaml --root-dir "$ROOT" \
  --node-name "$NODE" --port "$PORT" --healthz-port "$HEALTHZ_PORT" --cert-dir "$PKI" \
  --tls-cert-file "$PKI/kubelet.crt" --tls-private-key-file "$PKI/kubelet.key" \
  --client-ca-file "$PKI/ca.crt" --authorization-policy-file "$RUN_DIR/policy.yaml" \
  --pod-manifest-path "$PODS" --audit-log-path "$RUN_DIR/audit.log" "${EXTRA[@]}"
