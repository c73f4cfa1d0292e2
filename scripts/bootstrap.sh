#!/usr/bin/env bash
# Sets up a new machine for Syncless: Debian packages, then one virtualenv per
# CPython version (.venv/3.11, .venv/3.12, .venv/3.13) with Syncless built and
# installed into it. Re-running it only rebuilds what changed (ccache, ninja).
#
#   bash scripts/bootstrap.sh            # 3.11, 3.12 and 3.13
#   bash scripts/bootstrap.sh 3.11       # just one
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.12 3.13)

debian_packages=(build-essential ccache ninja-build cmake pkg-config
                 libboost-context-dev libevent-dev libc-ares-dev libssl-dev libgtest-dev
                 dnsmasq mariadb-server redis-server)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  # The servers are for tests, which start throw-away ones of their own
  # (tests/real_servers.py): while this script runs, a policy-rc.d answering
  # 101 keeps apt from starting them as services. A policy the machine already
  # has stays as it is.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The interpreter for a version: pyenv's newest of that series, else PATH.
find_python() {
  local v=$1 candidate
  for candidate in $(ls -d "$HOME"/.pyenv/versions/"$v".* 2>/dev/null | sort -V -r); do
    [ -x "$candidate/bin/python$v" ] && { echo "$candidate/bin/python$v"; return; }
  done
  command -v "python$v" || true
}

for v in "${versions[@]}"; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "bootstrap: no CPython $v found (pyenv or PATH)" >&2
    exit 1
  fi
  venv=.venv/$v
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q scikit-build-core ninja cmake -r tests/requirements.txt
  # No build isolation and a fixed build dir: a rebuild recompiles only what changed.
  "$venv/bin/python" -m pip install -q --no-build-isolation --no-deps \
      -Cbuild-dir="build/py$v" .
  echo "bootstrap: $venv ready ($("$venv/bin/python" --version))"
done
