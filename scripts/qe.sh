#!/usr/bin/env bash
# Install Quantum ESPRESSO for the tests of the QE oracle and of the import from the database: Debian's
# `quantum-espresso` (pw.x 6.7) and `quantum-espresso-data`, whose examples ship the UPF pseudopotentials the tests
# install as an aiida-pseudo family (Si.pbe-rrkj.UPF, ...). Needs root and apt-get; without them it says so and the
# tests marked real_qe skip with the reason. Safe to run again. `make demo` does not need QE.
set -uo pipefail
command -v pw.x >/dev/null && dpkg -s quantum-espresso-data >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "# Quantum ESPRESSO not installed (needs root and apt-get: apt-get install quantum-espresso" \
    "quantum-espresso-data); the real_qe tests skip" >&2
  exit 0
fi
{ apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq quantum-espresso quantum-espresso-data; } >&2 \
  || echo "# apt-get install quantum-espresso failed; the real_qe tests skip" >&2
exit 0
