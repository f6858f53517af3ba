#!/usr/bin/env bash
# Create (or update) the project's virtual environment with everything the plugin, its tests and its demo need.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${2:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# --pre: python-ace 0.4.0rc1 is a pre-release (see pyproject.toml for every pin and its reason).
"$VENV/bin/python" -m pip install --quiet --pre -e ".[dev]"
# tensorpotential (pacemaker's `tensorpot` backend and gracemaker, the second trainer) without its own requirements: they would pull
# tensorflow[and-cuda] (several GB of CUDA wheels) and numpy 2.4, which breaks the backend.
"$VENV/bin/python" -m pip install --quiet --no-deps "tensorpotential==0.6.2.1"
"$VENV/bin/python" -m pip check
