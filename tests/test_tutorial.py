"""docs/tutorial.md works as written: its bash blocks run in order, in an empty folder, on a fresh AiiDA profile of
their own, and what they print matches the tutorial's `#>` lines (`…` stands for what differs from run to run)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.real_pacemaker

TUTORIAL = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def tutorial_script() -> str:
    return "\n".join(re.findall(r"^```bash\n(.*?)^```", TUTORIAL.read_text(), re.MULTILINE | re.DOTALL))


def expected_lines(script: str) -> list[str]:
    return [line[3:].strip() for line in script.splitlines() if line.startswith("#> ")]


def test_the_tutorial_has_commands_and_what_they_print():
    script = tutorial_script()
    assert "verdi presto" in script and "train launch train.yaml --run" in script
    assert len(expected_lines(script)) >= 8


def test_the_tutorial_runs_as_written(tmp_path):
    script = tutorial_script()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AIIDA")}
    # the environment of `make install`: its bin folder first on PATH, as the tutorial asks
    environment["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    for line in expected_lines(script):
        pattern = ".*".join(re.escape(part) for part in line.split("…"))
        assert re.search(pattern, output), f"the tutorial shows `{line}`, the commands printed:\n{output}"
    assert (tmp_path / "parity.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "lammps" / "cu.yace").exists()
