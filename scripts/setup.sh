#!/usr/bin/env bash
# Make a virtual environment with latent-skills and its test tools installed.
#   VENV        where to put it (default .venv)
#   TORCH_SPEC  the torch to install first (default torch==2.13.0, the CPU wheel this project's
#               machines carry; on a GPU machine pass the CUDA build you want, e.g. TORCH_SPEC=torch)
#   EXTRAS      the package's extras to install with it (default test)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-test}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
"$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
echo "latent-skills installed in $VENV"
