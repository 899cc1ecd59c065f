#!/usr/bin/env bash
# Set up swiftnb on a fresh machine, then run a job:  tools/fresh.sh quickstart | tools/fresh.sh test [test.py args]
# Creates .venv (unless one is active), installs torch 2.13.0 first when no torch is installed (a CPU wheel where one is
# provided; an unpinned torch would pull a multi-GB CUDA build), then swiftnb with its dev extras, in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-quickstart}; shift || true
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  . .venv/bin/activate
fi
python -c 'import torch' 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"   # every time: a venv made earlier may lack what pyproject.toml now asks for
case "$job" in
  quickstart) exec swiftnb quickstart "$@" ;;
  test) exec python tools/test.py "$@" ;;
  *) echo "usage: tools/fresh.sh quickstart|test [args]" >&2; exit 2 ;;
esac
