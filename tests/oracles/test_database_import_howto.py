"""docs/howto/database_import.md works as written with real pw.x: its Python blocks run in order in one namespace
(their asserts are the checks), and its command-line lines run on the same profile."""

import pathlib
import re
import shlex

import pytest

from tests.test_cli import invoke

pytestmark = pytest.mark.real_qe

HOWTO = pathlib.Path(__file__).resolve().parents[2] / "docs" / "howto" / "database_import.md"


def test_the_database_import_howto_runs_as_written(qe_code):
    text = HOWTO.read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    commands = [
        line
        for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        for line in block.splitlines()
        if line.strip()
    ]
    assert len(blocks) >= 5 and commands == ["aiida-mlip-trainer data import --group silicon-pbe"]
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(HOWTO), "exec"), namespace)  # noqa: S102 - the page's own code
    assert namespace["code"].filepath_executable.name == "pw.x"
    assert namespace["builder"].training_set.uuid == namespace["training_set"].uuid
    assert namespace["labelling"].is_finished_ok
    for command in commands:
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0].endswith("2 structures, 4 atoms, elements ['Si'], labelled, with stress")
