"""Replay of recorded runs of the pacemaker tools, keyed by a hash of what the tool was given (aiida-testing's idea).

The mock executables (``mock_pacemaker.py``, ``mock_pace_tools.py``) call :func:`run`. It computes the key of the
inputs the tool would read: the command line, ``input.yaml`` (as data, not as text), the potential files and the
*content* of every pandas dataset (positions, cell, pbc, numbers, labels, names; rounded to 1e-8 so that the gzip
time stamp and float printing do not count). Then:

- a key with a recording under ``tests/fixtures/replay/<tool>/<key>/``: the recorded output files are written, the
  recorded stdout and stderr are printed and the recorded exit status is returned;
- a key without one: the mock fails loudly (exit status 97, the key and what it was given on stderr), so that a
  change of what the plugin writes (an ``input.yaml`` regression, other data) shows up as a failing test;
- with ``MOCK_REPLAY_RECORD=1`` in the environment: the real tool (found on PATH) runs instead, and its outputs are
  recorded under the key. Record once, after a deliberate change: ``MOCK_REPLAY_RECORD=1 bash scripts/test.sh
  tests/workflows`` and commit the new folders (each has an ``inputs.json`` that says what it answers).

Failure injection (``MOCK_PACEMAKER_MODE``, ``MOCK_PACE_MODE``) happens in the mock executables after the key has
been checked: only inputs that have a recording can be made to fail.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

RECORDINGS = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "replay"
UNKNOWN_INPUT = 97
# What each tool writes that its parser reads (the rest, reports and prediction pickles, is not replayed).
OUTPUTS = {
    "pacemaker": (
        "log.txt",
        "metrics.txt",
        "test_metrics.txt",
        "cycle_metrics.txt",
        "test_cycle_metrics.txt",
        "output_potential.yaml",
        "interim_potential_*.yaml",
    ),
    "pace_select": (),  # the -o file, added from the command line
    "pace_activeset": ("*.asi", "*.asi.nonlinear"),
}


def _round(values) -> list:
    import numpy as np

    array = np.round(np.asarray(values, dtype=float), 8) + 0.0  # + 0.0: no negative zero
    return array.tolist()


def dataset_digest(path: str) -> str:
    """sha256 of the content of a pandas dataset (a gzip or plain pickle written by the plugin)."""
    import pandas as pd

    with open(path, "rb") as handle:
        compression = "gzip" if handle.read(2) == b"\x1f\x8b" else None
    frame = pd.read_pickle(path, compression=compression)
    rows = []
    for _, row in frame.iterrows():
        atoms = row["ase_atoms"]
        entry = {
            "numbers": atoms.numbers.tolist(),
            "positions": _round(atoms.positions),
            "cell": _round(atoms.cell.array),
            "pbc": atoms.pbc.tolist(),
        }
        for column in sorted(frame.columns):
            if column == "ase_atoms":
                continue
            value = row[column]
            entry[column] = value if isinstance(value, str | int) else _round(value)
        rows.append(entry)
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _file_digest(path: str) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def tool_of(argv: list[str]) -> str:
    if argv[:1] == ["-p"]:
        return "pace_select"
    if "-d" in argv:
        return "pace_activeset"
    return "pacemaker"


def describe(tool: str, argv: list[str]) -> dict:
    """What the tool is given, as plain data: the key is its hash. Raises FileNotFoundError for a missing input."""
    import yaml

    if tool == "pacemaker":
        config = yaml.safe_load(pathlib.Path(argv[0]).read_text())
        data = config.get("data", {})
        description = {"argv": argv, "input.yaml": config}
        for key in ("filename", "test_filename"):
            if key in data:
                description[key] = dataset_digest(data[key])
        if "-p" in argv:
            description["previous"] = _file_digest(_option(argv, "-p"))
        return description
    if tool == "pace_select":
        potential = _option(argv, "-p")
        description = {"argv": argv, "potential": _file_digest(potential), "pool": dataset_digest(argv[-1])}
        if "-a" in argv:
            description["active_set"] = _file_digest(_option(argv, "-a"))
        return description
    return {"argv": argv, "potential": _file_digest(argv[0]), "data": dataset_digest(_option(argv, "-d"))}


def _summary(tool: str, description: dict) -> dict:
    """The human-readable part of what a recording answers."""
    summary = {"tool": tool, "argv": description["argv"]}
    if tool == "pacemaker":
        config = description["input.yaml"]
        summary["elements"] = config.get("potential", {}).get("elements")
        summary["fit"] = config.get("fit")
    return summary


def run(argv: list[str]) -> int:
    """Replay (or record) one run of a pacemaker tool in the current folder; return its exit status."""
    tool = tool_of(argv)
    try:
        description = describe(tool, argv)
    except FileNotFoundError as error:
        sys.stderr.write(f"FileNotFoundError: {error}\n")
        return 1
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]
    folder = RECORDINGS / tool / key
    outputs = list(OUTPUTS[tool]) + ([_option(argv, "-o")] if tool == "pace_select" else [])

    if os.environ.get("MOCK_REPLAY_RECORD") == "1":
        real = shutil.which(tool) or shutil.which(tool, path=os.path.dirname(sys.executable))
        completed = subprocess.run([real, *argv], capture_output=True, text=True, check=False)
        folder.mkdir(parents=True, exist_ok=True)
        for pattern in outputs:
            for path in glob.glob(pattern):
                shutil.copy(path, folder / path)
        (folder / "stdout").write_text(completed.stdout[-20000:])
        (folder / "stderr").write_text(completed.stderr[-20000:])
        (folder / "exit_status").write_text(f"{completed.returncode}\n")
        (folder / "inputs.json").write_text(json.dumps(_summary(tool, description), indent=1, sort_keys=True) + "\n")
        sys.stdout.write(completed.stdout)
        sys.stderr.write(completed.stderr)
        return completed.returncode

    if not folder.is_dir():
        sys.stderr.write(
            f"mock {tool}: no recorded run for these inputs (key {key}): {json.dumps(_summary(tool, description))}\n"
            "If the inputs changed on purpose, record them: MOCK_REPLAY_RECORD=1 (see tests/mock_codes/replay.py)\n"
        )
        return UNKNOWN_INPUT
    for path in folder.iterdir():
        if path.name not in ("stdout", "stderr", "exit_status", "inputs.json"):
            shutil.copy(path, path.name)
    sys.stdout.write((folder / "stdout").read_text())
    sys.stderr.write((folder / "stderr").read_text())
    return int((folder / "exit_status").read_text())


def ensure_known(argv: list[str]) -> int | None:
    """None when these inputs have a recording (made now, in a scratch copy of the folder, in record mode), else the
    exit status of an unknown input, with the message on stderr. For failure injection: only known inputs fail."""
    import tempfile

    tool = tool_of(argv)
    try:
        description = describe(tool, argv)
    except FileNotFoundError as error:
        sys.stderr.write(f"FileNotFoundError: {error}\n")
        return 1
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]
    if (RECORDINGS / tool / key).is_dir():
        return None
    if os.environ.get("MOCK_REPLAY_RECORD") == "1":
        here = os.getcwd()
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copytree(here, scratch, dirs_exist_ok=True)
            os.chdir(scratch)
            try:
                run(argv)
            finally:
                os.chdir(here)
        return None
    sys.stderr.write(
        f"mock {tool}: no recorded run for these inputs (key {key}): {json.dumps(_summary(tool, description))}\n"
    )
    return UNKNOWN_INPUT
