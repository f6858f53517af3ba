"""Nodes read back from an AiiDA archive are untrusted: a tampered archive cannot reach a shell, a LAMMPS line, a
Python snippet or a path outside the folder it is written to.

Each test builds a real archive of a node, alters it as an attacker would (attributes, repository files), deletes
the original and imports the altered archive, then does what a recipient does with the node.
"""

import io
import json
import sqlite3
import tempfile
import zipfile
from hashlib import sha256

import numpy as np
import pytest
from aiida import orm
from aiida.tools import delete_nodes
from aiida.tools.archive import create_archive, import_archive
from click.testing import CliRunner

from aiida_mlip_trainer.cli import cli
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData, TrainingSetError
from aiida_mlip_trainer.data.pace_potential import PotentialError
from aiida_mlip_trainer.data.training_set import ARRAYS_FILENAME
from aiida_mlip_trainer.export import export_potential
from aiida_mlip_trainer.names import UnsafeNameError
from aiida_mlip_trainer.physics.training_arrays import content_hash
from aiida_mlip_trainer.workflows.functions.training_set import import_training_set
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
INJECTION = "Cu\nshell touch pwned #"


def tampered(node, tmp_path, *, attributes=None, files=None, rename=None):
    """The node as someone receives it from an altered archive: ``attributes`` set (a value None deletes),
    ``files`` replaced or added in the repository (name -> bytes), repository objects renamed (old -> new)."""
    archive = tmp_path / f"{node.uuid}.aiida"
    create_archive([node], filename=archive, overwrite=True)
    uuid = node.uuid
    delete_nodes([node.pk], dry_run=False)

    altered = tmp_path / f"{uuid}-altered.aiida"
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    database = tmp_path / "db.sqlite3"
    database.write_bytes(members["db.sqlite3"])
    with sqlite3.connect(database) as connection:
        stored, metadata = connection.execute(
            "SELECT attributes, repository_metadata FROM db_dbnode WHERE uuid = ?", (uuid,)
        ).fetchone()
        stored, metadata = json.loads(stored), json.loads(metadata)
        for key, value in (attributes or {}).items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        objects = metadata.setdefault("o", {})
        for old, new in (rename or {}).items():
            *directories, name = new.split("/")
            folder = objects
            for directory in directories:  # the repository stores a path as nested folders, even ".."
                folder = folder.setdefault(directory, {"o": {}})["o"]
            folder[name] = objects.pop(old)
        for name, content in (files or {}).items():
            key = sha256(content).hexdigest()
            objects[name] = {"k": key}
            members[f"repo/{key}"] = content
        connection.execute(
            "UPDATE db_dbnode SET attributes = ?, repository_metadata = ? WHERE uuid = ?",
            (json.dumps(stored), json.dumps(metadata), uuid),
        )
    members["db.sqlite3"] = database.read_bytes()
    with zipfile.ZipFile(altered, "w") as target:
        for name, content in members.items():
            target.writestr(name, content)
    import_archive(altered)
    return orm.load_node(uuid)


def cli_run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def deployable(baseline=None):
    return PacePotentialData(POTENTIAL, yace=b"# a yace file\n", baseline=baseline).store()


# ----------------------------------------------------------------------------------------------- potentials
def test_element_symbols_of_an_archive_never_reach_a_lammps_line(tmp_path):
    """The attack of the issue: `elements` = ["Cu\\nshell touch pwned #"] wrote a `shell` line that LAMMPS runs."""
    node = tampered(deployable(), tmp_path, attributes={"elements": [INJECTION]})
    out = tmp_path / "out"
    with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*'Cu\\nshell.* is not a chemical"):
        export_potential(node, out, target="lammps")
    with pytest.raises(PotentialError, match="not a chemical element symbol"):
        node.lammps_commands()
    result = cli_run("potential", "export", node.pk, "--format", "lammps", "-o", out)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a chemical element symbol" in result.output, result.output
    written = [path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()]
    assert not any("shell" in text for text in written)


@pytest.mark.parametrize(
    "baseline",
    [
        {"type": "zbl", "params": {"inner_cutoff": "1.0\nshell touch pwned", "cutoff": 2.0}},
        {"type": "lj", "params": {"epsilon": {INJECTION: 0.01}, "sigma": 3.4, "cutoff": 7.0}},
        {"type": "zbl\nshell touch pwned", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}},
        {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0, "extra": "__import__('os')"}},
    ],
)
def test_a_baseline_from_an_archive_is_checked_before_it_reaches_lammps_or_python(tmp_path, baseline):
    valid = {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}
    node = tampered(deployable(valid), tmp_path, attributes={"baseline": baseline})
    for target in ("lammps", "ase"):
        with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*attribute 'baseline'"):
            export_potential(node, tmp_path / target, target=target)
    with pytest.raises(PotentialError):
        node.get_calculator()
    assert not (tmp_path / "lammps").exists() and not (tmp_path / "ase").exists()  # refused before any file


def test_potential_files_are_compared_with_the_content_hash(tmp_path):
    node = tampered(deployable(), tmp_path, files={"potential.yace": b"pair_style shell\n"})
    with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*do not match its content_hash"):
        export_potential(node, tmp_path / "out", target="lammps")
    assert not (tmp_path / "out" / "potential.yace").exists()


def test_only_the_potential_files_are_ever_written(tmp_path):
    """An extra repository file in the archive (with a matching hash: the hash covers only the known files) is
    never written out."""
    node = tampered(deployable(), tmp_path, files={"run_me.sh": b"#!/bin/sh\ntouch pwned\n"})
    written = export_potential(node, tmp_path / "out", target="ase")
    assert sorted(path.name for path in written) == ["potential.yaml", "potential_calculator.py"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["potential.yaml", "potential_calculator.py"]


@pytest.mark.parametrize("name", ["../escaped", 'a b"q', "/tmp/abs", ".hidden", "-rf", "x/../../y"])
def test_export_name_is_a_plain_file_stem(tmp_path, name):
    node = deployable()
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeNameError, match="not a plain file stem"):
        export_potential(node, out, name=name)
    result = cli_run("potential", "export", node.pk, "-o", out, "--name", name)
    assert result.exit_code != 0 and "not a plain file stem" in result.output, result.output
    assert not any(tmp_path.rglob("*.yace")) and not any(tmp_path.rglob("*.lammps"))


def test_export_name_with_dots_and_dashes_still_works(tmp_path):
    written = export_potential(deployable(), tmp_path, name="cu-v1.2_final")
    assert sorted(path.name for path in written) == ["cu-v1.2_final.lammps", "cu-v1.2_final.yace"]
    assert "pair_coeff * * cu-v1.2_final.yace Ar" in (tmp_path / "cu-v1.2_final.lammps").read_text()


# ------------------------------------------------------------------------------------------------ files
def test_a_stored_file_name_is_never_used_as_a_path(tmp_path, argon_structures, monkeypatch):
    """`SinglefileData.filename` = '../escaped.extxyz': import_training_set wrote outside its temporary folder."""
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, argon_structures["test"], format="extxyz")
    node = orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename="structures.extxyz").store()
    node = tampered(
        node, tmp_path, attributes={"filename": "../escaped.extxyz"}, rename={"structures.extxyz": "../escaped.extxyz"}
    )
    assert node.filename == "../escaped.extxyz"
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdir))  # import_training_set's temporary folder goes here
    training_set = import_training_set(node)
    assert training_set.num_structures == len(argon_structures["test"])  # the suffix still tells ASE the format
    # the temporary folder is gone, and nothing was written next to it
    assert list(workdir.iterdir()) == []


# ------------------------------------------------------------------------------------------ training sets
def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_tampered_npz_is_refused_naming_the_node(tmp_path, argon_structures):
    """natoms[0] += 5 silently mis-sliced every structure; now the node is refused on load."""
    original = TrainingSetData(argon_structures["test"]).store()
    arrays = dict(original.get_arrays())
    arrays["natoms"] = arrays["natoms"].copy()
    arrays["natoms"][0] += 5
    node = tampered(original, tmp_path, files={ARRAYS_FILENAME: _npz(arrays)})
    named = rf"TrainingSetData<{node.pk}> \({node.uuid}\): .*corrupt or was altered"
    with pytest.raises(TrainingSetError, match=named):
        node.to_atoms()


def test_a_consistent_tamper_is_caught_by_the_content_hash(tmp_path, argon_structures):
    original = TrainingSetData(argon_structures["test"]).store()
    arrays = dict(original.get_arrays())
    arrays["energy"] = arrays["energy"] + 1.0  # plausible values, consistent shapes
    node = tampered(original, tmp_path, files={ARRAYS_FILENAME: _npz(arrays)})
    with pytest.raises(TrainingSetError, match=rf"TrainingSetData<{node.pk}> .*do not match its content_hash"):
        node.get_arrays()


@pytest.mark.parametrize(
    "alter",
    [
        lambda a: a.update(natoms=a["natoms"] + np.where(np.arange(len(a["natoms"])) == 0, 5, 0)),
        lambda a: a.update(positions=np.where(np.arange(len(a["positions"]))[:, None] == 3, np.nan, a["positions"])),
        lambda a: a.update(names=np.array(["ok\nbroken"] + a["names"].tolist()[1:])),
        lambda a: a.update(energy=a["energy"].astype(str)),
        lambda a: a.update(extra=np.arange(3)),
        lambda a: a.update(pbc=np.tile([True, True, False], (len(a["pbc"]), 1))),
    ],
)
def test_load_rechecks_even_when_the_attacker_recomputes_the_hash(tmp_path, argon_structures, alter):
    original = TrainingSetData(argon_structures["test"]).store()
    arrays = dict(original.get_arrays())
    alter(arrays)
    node = tampered(
        original,
        tmp_path,
        files={ARRAYS_FILENAME: _npz(arrays)},
        attributes={"content_hash": content_hash(arrays)},
    )
    with pytest.raises(TrainingSetError, match=rf"TrainingSetData<{node.pk}> .*corrupt or was altered"):
        node.get_arrays()


def test_object_arrays_are_never_unpickled(tmp_path, argon_structures):
    original = TrainingSetData(argon_structures["test"]).store()
    arrays = dict(original.get_arrays())
    arrays["names"] = np.array([object()] * len(arrays["names"]), dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # a pickle inside the .npz
    node = tampered(original, tmp_path, files={ARRAYS_FILENAME: buffer.getvalue()})
    with pytest.raises(TrainingSetError, match=rf"TrainingSetData<{node.pk}> .*cannot be read safely"):
        node.get_arrays()


def test_element_attribute_of_a_training_set_is_checked(tmp_path, argon_structures):
    node = tampered(TrainingSetData(argon_structures["test"]).store(), tmp_path, attributes={"elements": [INJECTION]})
    with pytest.raises(TrainingSetError, match=rf"TrainingSetData<{node.pk}> .*not a chemical element symbol"):
        node.elements  # noqa: B018 - the property is what every validator reads
    with pytest.raises(TrainingSetError, match="attribute.*elements.*do not match"):
        node.get_arrays()


def test_training_baseline_attribute_is_checked_where_it_reaches_input_yaml(small_parameters):
    from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
    from aiida_mlip_trainer.physics.baselines import BaselineError

    bad = {"type": "zbl", "params": {"inner_cutoff": "nan", "cutoff": 2.0}}
    with pytest.raises(BaselineError):
        build_input_yaml(small_parameters, elements=["Ar"], train_filename="t.pckl.gzip", baseline=bad)
    with pytest.raises(UnsafeNameError):
        build_input_yaml(small_parameters, elements=["Ar\nx"], train_filename="t.pckl.gzip")


def test_untampered_archive_round_trip_still_works(tmp_path, argon_structures):
    """The checks refuse what was altered, nothing else."""
    node = tampered(TrainingSetData(argon_structures["test"]).store(), tmp_path)
    assert len(node.to_atoms()) == len(argon_structures["test"])
    potential = tampered(deployable({"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}), tmp_path)
    export_potential(potential, tmp_path / "ok", target="lammps")
    assert "pair_style hybrid/overlay pace zbl 1.0 2.0" in (tmp_path / "ok" / "potential.lammps").read_text()


def test_an_altered_node_is_refused_before_any_job(tmp_path, argon_structures, mock_pacemaker_code, small_parameters):
    from aiida.engine import run_get_node

    from aiida_mlip_trainer.calculations import PaceTrainCalculation

    training_set = tampered(
        TrainingSetData(argon_structures["train"]).store(), tmp_path, attributes={"elements": [INJECTION]}
    )
    jobs = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=rf"TrainingSetData<{training_set.pk}> .*not a chemical element symbol"):
        run_get_node(
            PaceTrainCalculation, code=mock_pacemaker_code, training_set=training_set, parameters=small_parameters
        )
    previous = tampered(deployable(), tmp_path, files={"potential.yaml": POTENTIAL.read_bytes() + b"\n# edited\n"})
    with pytest.raises(ValueError, match=rf"PacePotentialData<{previous.pk}> .*content_hash"):
        run_get_node(
            PaceTrainCalculation,
            code=mock_pacemaker_code,
            training_set=TrainingSetData(argon_structures["train"]).store(),
            parameters=small_parameters,
            previous_potential=previous,
        )
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == jobs
