#!/usr/bin/env bash
# Installs the Debian packages pykubelet's tests and examples use. Idempotent: does nothing when
# everything is present, runs `apt-get update` at most once otherwise. Needs root to install.
set -euo pipefail
PKGS=(python3-venv openssl busybox-static containerd runc containernetworking-plugins iptables prometheus iproute2 util-linux nodejs npm gcc libc6-dev curl asciinema docker-registry skopeo apache2-utils etcd-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node/npm may come from outside Debian on some machines: a working `npm` is enough.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 0
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
