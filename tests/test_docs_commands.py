"""The README's and the how-tos' commands work as written: their bash blocks are extracted verbatim and run in order
with bash -euo pipefail, and what they print matches their `#>` lines (`…` stands for what differs from run to
run), as tests/test_tutorial.py does for the tutorial.

One chain, on the path a newcomer takes: `make demo` (its step after the install, scripts/demo.sh, on a copy of
the repository's layout in tmp_path: the demo's profile in tmp_path/.aiida-demo, AIIDA_PATH never the user's; run
once for the module, and its output checked for warnings on its own), then the README's "After `make demo`" block on
that profile, the tutorial's code-creation loop on that same profile (the step that once made duplicate codes), then
every how-to with commands, in the order of HOWTOS. At the end each code label exists once.

What is mocked: `pacemaker`, `pace_select` and `pace_activeset` are the replaying stand-ins of tests/mock_codes
(recorded real runs of exactly these inputs, under tests/fixtures/replay; an unknown input fails with exit status
97). The chain finds them as the docs say, with `command -v` after the README's `PATH=$PWD/.venv/bin:$PATH`:
tmp_path/.venv/bin holds them and nothing else, so every other command (verdi, python, pace_yaml2yace,
mlip-trainer-explore, mlip-trainer-ase-oracle) is the real one of this environment. The exploration's MD, the EMT
oracle, the .yace conversion and the validation are real. To record again after a deliberate change of what the
docs run: MOCK_REPLAY_RECORD=1 pytest tests/test_docs_commands.py (the real tools run, about 10 minutes).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MOCK_CODES = ROOT / "tests" / "mock_codes"
# Every how-to with commands, in the order the chain runs them (the loop last: it needs the codes of the others).
HOWTOS = ("exploration.md", "labelling.md", "active_learning.md")
# Pages whose commands another test runs, or that are not for a newcomer's first hour.
ELSEWHERE = {
    "tutorial.md": "tests/test_tutorial.py, on a profile of its own (real pacemaker)",
    "database_import.md": "tests/oracles/test_database_import_howto.py, after its Python blocks (real pw.x)",
    "benchmarks.md": "benchmark runs of minutes to hours (benchmarks/), each recorded in docs/benchmarks.md",
}
MOCKED = {"pacemaker": "mock_pacemaker.py", "pace_select": "mock_pace_tools.py", "pace_activeset": "mock_pace_tools.py"}


def bash_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", path.read_text(), re.MULTILINE | re.DOTALL)


def expected_lines(script: str) -> list[str]:
    return [line[3:].strip() for line in script.splitlines() if line.startswith("#> ")]


def tutorial_code_loop() -> str:
    """The tutorial's code-creation loop, verbatim: its first block from `for tool` to `done`."""
    (found,) = re.findall(r"^for tool .*?^done\n", bash_blocks(ROOT / "docs" / "tutorial.md")[0], re.M | re.S)
    return found


def readme_blocks() -> tuple[str, str]:
    """The README's two bash blocks: `make demo`/`make test`, and what to run after `make demo`."""
    make, after_demo = bash_blocks(ROOT / "README.md")
    return make, after_demo


# `make demo`'s step after its install, verbatim (the first test checks that the Makefile runs it)
DEMO = "bash scripts/demo.sh"


def chain_script() -> str:
    """What the chain runs after the demo: the README's, the tutorial's code loop and the how-tos' blocks, verbatim,
    each from the clone's root (a block may cd)."""
    make, after_demo = readme_blocks()
    parts = [after_demo, tutorial_code_loop()]
    for name in HOWTOS:
        parts += bash_blocks(ROOT / "docs" / "howto" / name)
    return "\n".join(f'cd "$CLONE"\n{part}' for part in parts)


def test_every_page_with_commands_is_run_by_a_test():
    pages = {path.name for path in (ROOT / "docs").rglob("*.md") if bash_blocks(path)}
    assert pages == set(HOWTOS) | set(ELSEWHERE), "a page with bash blocks that no test runs: add it to HOWTOS"
    make, _ = readme_blocks()
    # the README's first block is `make demo` and `make test`: the chain runs what `make demo` runs after `make install`
    assert [line.split("#")[0].strip() for line in make.splitlines()] == ["make demo", "make test"]
    assert f"\t{DEMO}" in (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n")[0]


def test_every_code_creation_line_is_idempotent_and_non_interactive():
    scripts = {"scripts/demo.sh": [(ROOT / "scripts" / "demo.sh").read_text()]}
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        scripts[str(path.relative_to(ROOT))] = bash_blocks(path)
    creations = 0
    for path, blocks in scripts.items():
        lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
        for number, line in enumerate(lines):
            if "verdi code create" not in line:
                continue
            creations += 1
            guard = (lines[number - 1] + line).replace(" ", "")
            assert "--non-interactive" in line, f"{path}: `verdi code create` without --non-interactive"
            assert re.search(r'verdicodeshow"?[^|]*@localhost"?>/dev/null2>&1\|\|', guard), (
                f"{path}: `verdi code create` not guarded by `verdi code show LABEL@localhost >/dev/null 2>&1 ||`"
            )
    assert creations >= 6


def _clone(tmp_path: pathlib.Path) -> pathlib.Path:
    """The layout the README's commands expect at the repository root: scripts/demo.sh, examples/, .venv/bin."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo.sh", clone / "scripts" / "demo.sh")
    (clone / "examples").symlink_to(ROOT / "examples")
    bin_folder = clone / ".venv" / "bin"
    bin_folder.mkdir(parents=True)
    for tool, script in MOCKED.items():
        wrapper = bin_folder / tool
        # The stand-in leaves its folder off PATH, so that in record mode replay.py finds the real tool.
        wrapper.write_text(
            f"#!{sys.executable}\nimport os, runpy, sys\n"
            f"os.environ['PATH'] = os.pathsep.join(p for p in os.environ['PATH'].split(os.pathsep) "
            f"if os.path.realpath(p) != {str(bin_folder.resolve())!r})\n"
            f"sys.path.insert(0, {str(MOCK_CODES)!r})\n"
            f"runpy.run_path({str(MOCK_CODES / script)!r}, run_name='__main__')\n"
        )
        wrapper.chmod(0o755)
    return clone


def run_bash(script: str, cwd: pathlib.Path, timeout: int) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AIIDA", "MOCK_"))}
    if os.environ.get("MOCK_REPLAY_RECORD") == "1":
        environment["MOCK_REPLAY_RECORD"] = "1"
    environment["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["CLONE"] = str(cwd)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        stdin=subprocess.DEVNULL,  # a prompt reads end of file: it aborts instead of waiting
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
    """The clone after `make demo` (one run for the module: its check and the chain that goes on from its profile),
    and what the demo printed."""
    clone = _clone(tmp_path_factory.mktemp("docs"))
    return clone, run_bash(DEMO, clone, timeout=1500)


def test_the_demo_succeeds_without_a_warning(demo):
    """It printed `Warning: output parser returned exit code<...>` (a selection round that found nothing new, as
    expected) and warned twice that pace_select returned fewer structures than asked (its rule, not a fault). Those
    are now said in words as reports; a line with `Warning` is a new one, to remove or to explain. (The pacemaker
    tools are the replaying stand-ins, which print what the real tools printed on these inputs; the real pacemaker
    runs TrainingWorkChain in tests/integration/test_training_workchain_real.py.)"""
    _, result = demo
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "test force RMSE:" in result.stdout and "pair_style hybrid/overlay pace zbl" in result.stdout
    # what the warnings said is still said, as reports
    assert "Report: " in output and "nothing selected: no structure of the pool extends the active set" in output
    warnings = [line for line in output.splitlines() if "Warning" in line or "Traceback" in line]
    # not the demo's: aiida's check of the new localhost computer runs `whoami` in a login shell, and relays what the
    # machine's shell start-up files print on stderr (seen here: a pyenv rehash racing another shell)
    warnings = [line for line in warnings if "nonempty stderr in the whoami command" not in line]
    assert not warnings, "\n".join(warnings)


def test_the_readme_and_the_howtos_run_as_written_on_the_demo_profile(demo):
    clone, made = demo
    assert made.returncode == 0, f"the demo failed:\n{made.stdout[-6000:]}\n--- stderr ---\n{made.stderr[-6000:]}"
    script = chain_script()
    result = run_bash(script + '\ncd "$CLONE"\nverdi code list -a', clone, timeout=1500)
    output = made.stdout + result.stdout
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    for line in expected_lines(script):
        pattern = ".*".join(re.escape(part) for part in line.split("…"))
        assert re.search(pattern, output), f"the docs show `{line}`, the commands printed:\n{output}"
    assert "fine-tuning PacePotentialData<" in output and "TrainingWorkChain<" in output
    assert "lineage of PacePotentialData" in output
    # every code once: the tutorial's loop and the how-tos reused what the demo had made
    code_list = output.rsplit("Full label", 1)[1]
    labels = re.findall(r"^(\S+)@localhost +\d+ ", code_list, re.MULTILINE)
    expected = {
        "pacemaker",
        "pace_select",
        "pace_activeset",
        "pace_yaml2yace",
        "mlip-trainer-explore",
        "mlip-trainer-ase-oracle",
        "cp2k.psmp",
    }
    assert sorted(labels) == sorted(expected), code_list
    # the pacemaker tools of the demo are the stand-ins (what this test says it mocks)
    show = run_bash("export AIIDA_PATH=$PWD/.aiida-demo\nverdi code show pacemaker@localhost", clone, timeout=120)
    assert str(clone / ".venv" / "bin" / "pacemaker") in show.stdout


def test_a_code_created_without_non_interactive_stops_the_chain(tmp_path):
    """The check that the chain goes red on a broken command: exploration.md's code line without
    `--non-interactive`, on a fresh profile (where the guard lets it run), stops at its first prompt."""
    (block,) = bash_blocks(ROOT / "docs" / "howto" / "exploration.md")
    broken = block.replace(" --non-interactive", "")
    assert broken != block

    def fresh(name: str) -> str:
        return f"export AIIDA_PATH=$PWD/{name}\nverdi presto --profile-name {name} --no-broker >/dev/null\n"

    assert run_bash(fresh("as_written") + block, tmp_path, timeout=300).returncode == 0
    result = run_bash(fresh("broken") + broken, tmp_path, timeout=300)
    assert result.returncode != 0 and "Aborted" in result.stderr, result.stderr[-3000:]
