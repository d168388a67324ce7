#!/usr/bin/env bash
# Regenerates pykubelet/runtime/cri/v1/api_pb2{,_grpc}.py{,i} from the CRI v1 api.proto.
#
# Origin: k8s.io/cri-api v0.25.0 as vendored by Debian 12's containerd source package
# (containerd 1.6.20~ds1-1+deb12u3, vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto): exactly
# the API the node's containerd serves. The gogo-protobuf import and file options are stripped
# (Go-only; protoc cannot resolve them); `package runtime.v1` stays (it is the gRPC method path).
# Usage: scripts/gen-cri-protos.sh [path/to/api.proto]   (default: `apt-get source` containerd)
# Needs grpcio-tools in the venv (`pip install -e '.[gen]'`); generated code requires protobuf and
# grpcio at least as new as the generator, which pyproject.toml's floors follow.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$HERE/.venv/bin/python}
OUT=pykubelet/runtime/cri/v1
SRC=${1:-}
if [ -z "$SRC" ]; then
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  (cd "$W" && apt-get source -q --download-only containerd >/dev/null)
  tar -C "$W" -xf "$W"/containerd_*.orig.tar.xz --wildcards '*/vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto'
  SRC=$(ls "$W"/containerd-*/vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto)
fi
cd "$HERE"
mkdir -p "$OUT"
{
  echo "// CRI v1 (k8s.io/cri-api v0.25.0, from Debian 12 containerd 1.6.20 source package),"
  echo "// gogo-protobuf lines stripped by scripts/gen-cri-protos.sh. Do not edit."
  sed -e '/^import "github.com\/gogo\/protobuf\/gogoproto\/gogo.proto";/d' -e '/^option (gogoproto\./d' "$SRC"
} > "$OUT/api.proto"
"$PY" -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. "$OUT/api.proto"
touch "$OUT/__init__.py"
echo "generated $OUT from $SRC with grpcio-tools $("$PY" -c 'import grpc_tools, importlib.metadata as m; print(m.version("grpcio-tools"))')"
