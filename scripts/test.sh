#!/usr/bin/env bash
# Lint, then run the whole test suite on a core.psql_dos profile backed by a real PostgreSQL server, with RabbitMQ
# and a one-node Slurm cluster for the tests of the daemon and the scheduler, and CP2K for the DFT oracle.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check aiida_mlip_trainer tests examples benchmarks
eval "$(bash scripts/postgres.sh)"
eval "$(bash scripts/services.sh)"
bash scripts/cp2k.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/pytest -ra "$@"
