"""One vocabulary for the YAML files of `train launch` and `learn launch`: the keys the readers accept (taken from the
code) are exactly those `--help` lists and the unknown-key message names, and every YAML file the README and docs
write uses only them. A legacy key (`preset`, `parameter_overrides`, a top-level `max_structures` or
`test_fraction` in a training file) is refused, never read silently."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from click.testing import CliRunner

from aiida_mlip_trainer.cli import cli
from aiida_mlip_trainer.cli.learning_yaml import ASE_ORACLE_KEYS, LEARNING_INPUT_KEYS, learning_builder_from_yaml
from aiida_mlip_trainer.cli.training_yaml import TRAINING_INPUT_KEYS, training_builder_from_yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
READERS = {
    "train": (TRAINING_INPUT_KEYS, training_builder_from_yaml),
    "learn": (LEARNING_INPUT_KEYS, learning_builder_from_yaml),
}
LEGACY = {
    "train": ["preset", "parameter_overrides", "max_structures", "test_fraction", "max_iterations"],
    "learn": ["preset", "parameter_overrides", "max_structures", "training_parameters"],
}


def help_keys(command: str) -> list[str]:
    result = CliRunner().invoke(cli, [command, "launch", "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed = result.output.split("Keys of the YAML file (any other is refused):\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^ {4}(\w+) {2,}\S", listed, re.MULTILINE)


def docs_yaml_files() -> list[tuple[str, str, str]]:
    """(page, file name, text) of every YAML file a bash block of the README or docs writes (`cat > X.yaml <<'EOF'`)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL):
            for name, text in re.findall(r"cat > (\S+\.yaml) <<'EOF'\n(.*?)^EOF$", block, re.MULTILINE | re.DOTALL):
                found.append((str(page.relative_to(ROOT)), name, text))
    return found


def written_keys(text: str) -> set[str]:
    """The top-level keys of a YAML file, those of its commented-out alternatives (`# key: ...`) included."""
    keys = set(yaml.safe_load(text))
    keys |= set(re.findall(r"^# (\w+):", text, re.MULTILINE))
    return keys


@pytest.mark.parametrize("command", READERS)
def test_help_lists_exactly_the_keys_the_reader_accepts(command):
    keys, _ = READERS[command]
    assert help_keys(command) == list(keys)


@pytest.mark.parametrize("command", READERS)
def test_an_unknown_key_is_refused_with_the_list_of_valid_keys(command, tmp_path):
    keys, reader = READERS[command]
    for legacy in LEGACY[command]:
        assert legacy not in keys
        path = tmp_path / f"{command}.yaml"
        path.write_text(yaml.safe_dump({"protocol": "fast", legacy: 1}))
        with pytest.raises(ValueError) as raised:
            reader(path)
        message = str(raised.value)
        assert f"unknown key(s) [{legacy!r}]" in message
        assert re.search(r"allowed: (.*)$", message).group(1).split(", ") == list(keys)
        # the command says the same, in one line
        result = CliRunner().invoke(cli, [command, "launch", str(path), "--run"])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert message in result.output


def test_the_docs_yaml_files_use_only_the_keys_of_the_code():
    files = docs_yaml_files()
    kinds = set()
    for page, name, text in files:
        command = name.split(".")[0].rstrip("0123456789_")
        assert command in READERS, f"{page}: {name}: name a train or learn YAML file train*.yaml or learn*.yaml"
        kinds.add(command)
        keys, _ = READERS[command]
        unknown = written_keys(text) - set(keys)
        assert not unknown, f"{page}: {name} uses {sorted(unknown)}, which `{command} launch` does not accept"
        oracle = yaml.safe_load(text).get("oracle")
        if isinstance(oracle, dict) and oracle.get("type") == "ase":
            assert set(oracle) <= {"type", "code", *ASE_ORACLE_KEYS}, f"{page}: {name}: oracle keys {sorted(oracle)}"
    assert kinds == set(READERS), f"the docs write no YAML file for {set(READERS) - kinds}"
