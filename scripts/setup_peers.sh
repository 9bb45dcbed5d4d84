#!/usr/bin/env bash
# Make .venv-peers: latent-skills plus d3rlpy, for `python -m benchmarks.peers` (BC, IQL, TD3+BC).
#
# d3rlpy is not an extra of latent-skills because pip cannot resolve it with our dependencies:
# d3rlpy 2.8.1 pins gymnasium==1.0.0 while gymnasium-robotics >= 1.4 (PointMaze, FrankaKitchen with
# mujoco >= 3.2) needs gymnasium >= 1.2. d3rlpy's offline training does not touch the gymnasium APIs
# that changed, so it is installed without its pins, next to its other requirements, in its own
# environment (never the one the library runs in). VENV and TORCH_SPEC as for scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv-peers}
EXTRAS=bench bash scripts/setup.sh
"$VENV/bin/python" -m pip install --quiet --no-deps "d3rlpy==2.8.1"
"$VENV/bin/python" -m pip install --quiet "gym>=0.26" structlog colorama dataclasses-json scikit-learn h5py typing-extensions
"$VENV/bin/python" -c "import d3rlpy; print('d3rlpy', d3rlpy.__version__, 'installed in $VENV')"
