#!/usr/bin/env bash
# Set up an AiiDA profile on the embedded default (SQLite storage, no broker, no service), the localhost computer
# and the pacemaker codes, then train a small potential with TrainingWorkChain. Safe to run again: it reuses them.
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
for tool in pacemaker:mlip_trainer.pace_train pace_select:mlip_trainer.pace_select \
            pace_activeset:mlip_trainer.pace_activeset pace_yaml2yace:core.shell; do
  verdi code show "${tool%%:*}@localhost" >/dev/null 2>&1 ||
    verdi code create core.code.installed --non-interactive --label "${tool%%:*}" --computer localhost \
      --filepath-executable "$(command -v "${tool%%:*}")" --default-calc-job-plugin "${tool#*:}"
done
mkdir -p .aiida-demo/work
cd .aiida-demo/work
verdi -p "$PROFILE" run ../../examples/train_from_extxyz.py
