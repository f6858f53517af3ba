#!/usr/bin/env bash
# Lint, then run the whole test suite on a core.psql_dos profile backed by a real PostgreSQL server, with RabbitMQ
# and a one-node Slurm cluster for the tests of the daemon and the scheduler, and CP2K for the DFT oracle.
#
# Two parts: the tests on MLIP_TRAINER_TEST_WORKERS pytest-xdist workers (2 by default; each worker has its own
# profile, database and daemon; the tests of a module stay on one worker), then the tests marked `alone` (one stops a
# process and cuts a Slurm job's time limit on the cluster the workers share). Arguments go to both parts.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check aiida_mlip_trainer tests examples benchmarks
eval "$(bash scripts/postgres.sh)"
eval "$(bash scripts/services.sh)"
bash scripts/cp2k.sh
bash scripts/qe.sh
export PATH="$PWD/.venv/bin:$PATH"

# pytest's exit status 5 is "no test selected": arguments may select tests of one part only.
status=0
# Whole modules go to the workers in the order of collection, the modules of real codes first (tests/conftest.py).
.venv/bin/pytest -ra -n "${MLIP_TRAINER_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder -m "not alone" "$@" ||
  status=$?
alone=0
.venv/bin/pytest -ra -m alone "$@" || alone=$?
# the first part's failure, else the second's
if [ "$status" -eq 5 ] || { [ "$status" -eq 0 ] && [ "$alone" -ne 5 ]; }; then status=$alone; fi
exit "$status"
