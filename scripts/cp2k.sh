#!/usr/bin/env bash
# Install CP2K for the tests of the DFT oracle: Debian's `cp2k` (cp2k.psmp) and, through `cp2k-data`, its basis sets
# and GTH pseudopotentials in /usr/share/cp2k. Needs root and apt-get; without them it says so and the tests marked
# real_cp2k skip with the reason. Safe to run again. `make demo` does not need CP2K.
set -uo pipefail
command -v cp2k.psmp >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "# CP2K not installed (needs root and apt-get: apt-get install cp2k); the real_cp2k tests skip" >&2
  exit 0
fi
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cp2k; } >&2 \
  || echo "# apt-get install cp2k failed; the real_cp2k tests skip" >&2
exit 0
