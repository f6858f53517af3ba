#!/usr/bin/env bash
# Is the active-learning loop restartable after the daemon stops? One try per call:
#
#   bash benchmarks/daemon_restart.sh TRY [PROCESS_LABEL]      (after `make install`; ~4 minutes on 2 cores)
#
# A fresh SQLite profile with AiiDA's ZeroMQ broker (/tmp/daemon-restart/aiida-TRY), a two-round EMT loop submitted to
# one daemon worker (benchmarks/daemon_restart_loop.py); as soon as a PROCESS_LABEL (default PaceTrainCalculation;
# AseOracleCalculation, ExplorationCalculation, ...) is waiting on its job, the daemon is stopped, checked to be gone,
# and started again 10 s later. Prints the processes at the stop and the loop's final state.
set -u
try=$1 label=${2:-PaceTrainCalculation}
root=$(cd "$(dirname "$0")/.." && pwd)
export AIIDA_PATH=/tmp/daemon-restart/aiida-$try PATH="$root/.venv/bin:$PATH"
rm -rf "$AIIDA_PATH" && mkdir -p "$AIIDA_PATH"
verdi presto --profile-name "restart-$try" --use-zeromq >/dev/null 2>&1 || { echo "verdi presto failed"; exit 1; }
verdi daemon start 1 >/dev/null
pk=$(verdi run "$root/benchmarks/daemon_restart_loop.py" 2>/dev/null | tail -1)
echo "try $try: ActiveLearningWorkChain<$pk>, stop while a $label waits on its job"
for _ in $(seq 1 600); do
  verdi process list -p1 2>/dev/null | grep -q "$label.*Waiting" && break
  sleep 2
done
sleep 5
echo "stopping the daemon at $(date +%T)"
verdi daemon stop >/dev/null 2>&1
sleep 10
verdi daemon status >/dev/null 2>&1 && echo "the daemon still runs" || echo "the daemon is stopped"
verdi process list 2>/dev/null | grep -E "Calculation|WorkChain"
echo "starting it at $(date +%T)"
verdi daemon start 1 >/dev/null
state=""
for _ in $(seq 1 900); do
  state=$(verdi process show "$pk" 2>/dev/null | awk '/^state/ {print $2, $3}')
  case "$state" in Finished*|Excepted*|Killed*) break ;; esac
  sleep 2
done
echo "try $try: ActiveLearningWorkChain<$pk> $state at $(date +%T)"
verdi process list -a 2>/dev/null | grep -E "Calculation|WorkChain" | grep -v "Finished \[0\]" || echo "every process finished [0]"
verdi daemon stop >/dev/null 2>&1
