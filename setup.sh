#!/usr/bin/env bash
# Create .venv (once) and install the bundle's requirements into it; `./setup.sh dev` adds the test tools.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
# torch goes first and pinned: an open torch requirement resolved first would pull a multi-GB CUDA build
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -r "requirements${1:+-$1}.txt"
