#!/usr/bin/env bash
# Set up an AiiDA profile on the embedded default (SQLite storage, no broker, no service), the localhost computer
# and the pacemaker code, then train a small potential through the plugin. Safe to run again: it reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# A project-local AiiDA configuration: the demo never touches the user's ~/.aiida.
export AIIDA_PATH="$PWD/.aiida-demo"
PROFILE=mlip-trainer-demo
if ! verdi profile show "$PROFILE" >/dev/null 2>&1; then
  verdi presto --profile-name "$PROFILE" --no-broker
fi
verdi profile set-default "$PROFILE" >/dev/null
if ! verdi -p "$PROFILE" code show pacemaker@localhost >/dev/null 2>&1; then
  verdi -p "$PROFILE" code create core.code.installed --non-interactive --label pacemaker --computer localhost \
    --filepath-executable "$(command -v pacemaker)" --default-calc-job-plugin mlip_trainer.pace_train
fi
verdi -p "$PROFILE" run examples/train_argon.py pacemaker@localhost
