#!/usr/bin/env python3
"""Stand-in for `pace_select` and `pace_activeset` in fast tests: replays the real run recorded for exactly these
inputs (see replay.py: an input it has no recording for fails with exit status 97), or fails on request.

The tool is told apart by its command line (pace_select starts with `-p`). MOCK_PACE_MODE selects the behaviour:
  success    the recorded real run of these inputs (selected.pkl.gz, or the active set), with its log
  too_few    the recorded "Insufficient atomic environments" traceback, exit status 1
  batch      pace_activeset only: the recorded "batch mode needs --all-atoms" error, exit status 1
  crash      a Python traceback, exit status 1
  killed     killed by SIGKILL (as the kernel's OOM killer or a scheduler would)
  no_output  the recorded success log, exit status 0, but no output file
  garbage    exit status 0 with an output file that is not what the tool writes
Failures are injected only for inputs that have a recording, with the recorded logs of tests/fixtures. The command
line it got is written to mock_argv.txt, one argument a line, so tests can check it. It runs under the project's
python (pandas).
"""

import os
import pathlib
import signal
import sys

import replay

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
mode = os.environ.get("MOCK_PACE_MODE", "success")
pathlib.Path("mock_argv.txt").write_text("\n".join(sys.argv[1:]) + "\n")

if sys.argv[1:2] == ["-p"]:
    tool, output, success = "pace_select", sys.argv[sys.argv.index("-o") + 1], FIXTURES / "pace_select_success"
    inputs = [sys.argv[2], sys.argv[-1]]
else:
    tool, output, success = "pace_activeset", "potential.asi", FIXTURES / "pace_activeset_success"
    inputs = [sys.argv[1], sys.argv[sys.argv.index("-d") + 1]]
missing = [name for name in inputs if not pathlib.Path(name).is_file()]
if missing:
    sys.exit(f"RuntimeError: File {missing[0]} not found")
if mode == "success":
    sys.exit(replay.run(sys.argv[1:]))
unknown = replay.ensure_known(sys.argv[1:])
if unknown is not None:
    sys.exit(unknown)


def replay_log(case: str) -> None:
    sys.stderr.write((FIXTURES / case / f"{tool}.err").read_text())


if mode == "too_few":
    replay_log(f"{tool}_too_few" if tool == "pace_select" else "pace_select_too_few")
    sys.exit(1)
if mode == "batch" and tool == "pace_activeset":
    replay_log("pace_activeset_batch_needs_all_atoms")
    sys.exit(1)
if mode == "killed":
    sys.stderr.write("2026/11/26 06:22:18 I - Compute B-projections\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "no_output":
    replay_log(success.name)
    sys.exit(0)
if mode == "garbage":
    replay_log(success.name)
    pathlib.Path(output).write_bytes(b"this is not what the tool writes\n")
    sys.exit(0)
if mode == "crash":
    raise RuntimeError(f"mock {tool} crashed")
sys.exit(f"mock {tool}: mode {mode!r} is not supported")
