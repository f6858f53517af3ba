#!/usr/bin/env python3
"""Stand-in for `pacemaker` in fast tests: replays the real run recorded for exactly these inputs (see replay.py: an
input it has no recording for fails with exit status 97), or fails on request.

MOCK_PACEMAKER_MODE selects the behaviour:
  success    the recorded real fit of these inputs (output_potential.yaml, log.txt, metrics tables)
  walltime   writes an interim potential and part of the log, then is killed by SIGKILL (as a scheduler would)
  nan        a fit whose loss becomes NaN
  crash      a fit that dies with a Python exception after it started
  bad_input  dies while reading input.yaml, before fitting
  killed_early   killed by SIGKILL after its first log lines, before any interim potential (time went on starting)
  killed_starting  killed by SIGKILL before it even wrote log.txt
A mode ending in `-once` (e.g. `walltime-once`) fails only on the first call that finds no file at the path in
MOCK_PACEMAKER_STATE, creating it; later calls succeed: a restart can then be seen to recover.
A comma-separated list of modes (e.g. `killed_early,walltime,success`) is played one per call, in order, counting
the calls in the file at MOCK_PACEMAKER_STATE; calls after the last repeat it.
Failures are injected only for inputs that have a recording; their files come from the recorded fit in
tests/fixtures/pace_train_success. The command line it got is written to mock_argv.txt, one argument a line, so
tests can check it. It runs under the project's python (pandas, PyYAML).
"""

import os
import pathlib
import shutil
import signal
import sys

import replay

RECORDED = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "pace_train_success"
mode = os.environ.get("MOCK_PACEMAKER_MODE", "success")
if mode.endswith("-once"):
    state = pathlib.Path(os.environ["MOCK_PACEMAKER_STATE"])
    mode = "success" if state.exists() else mode.removesuffix("-once")
    state.touch()
elif "," in mode:
    state = pathlib.Path(os.environ["MOCK_PACEMAKER_STATE"])
    calls = int(state.read_text()) if state.exists() else 0
    state.write_text(str(calls + 1))
    modes = mode.split(",")
    mode = modes[min(calls, len(modes) - 1)]
pathlib.Path("mock_argv.txt").write_text("\n".join(sys.argv[1:]) + "\n")

if mode == "success":
    sys.exit(replay.run(sys.argv[1:]))
unknown = replay.ensure_known(sys.argv[1:])
if unknown is not None:
    sys.exit(unknown)

log_lines = (RECORDED / "log.txt").read_text().splitlines(keepends=True)
metric_lines = (RECORDED / "metrics.txt").read_text().splitlines(keepends=True)

if mode == "killed_starting":
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "killed_early":
    pathlib.Path("log.txt").write_text("".join(log_lines[:12]))
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "bad_input":
    pathlib.Path("log.txt").write_text("".join(log_lines[:6]))
    sys.exit("yaml.scanner.ScannerError: mapping values are not allowed here")

if mode == "nan":
    pathlib.Path("log.txt").write_text("".join(log_lines))
    rows = metric_lines[:4]
    fields = metric_lines[4].split()
    fields[3] = "nan"
    pathlib.Path("metrics.txt").write_text("".join(rows) + " ".join(fields) + "\n")
    shutil.copy(RECORDED / "output_potential.yaml", "output_potential.yaml")
    sys.exit(0)

# walltime and crash: the fit has started and written an interim potential.
pathlib.Path("log.txt").write_text("".join(log_lines[:150]))
pathlib.Path("metrics.txt").write_text("".join(metric_lines[:12]))
shutil.copy(RECORDED / "output_potential.yaml", "interim_potential_0.yaml")
if mode == "walltime":
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
raise RuntimeError("mock pacemaker crashed during the fit")
