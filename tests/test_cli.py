"""The `aiida-mlip-trainer` command line: every command, its --help, and one-line errors."""

import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.common.links import LinkType
from ase.io import write
from click.testing import CliRunner

from aiida_mlip_trainer.cli import cli
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["data"],
        ["data", "import"],
        ["data", "show"],
        ["train"],
        ["train", "launch"],
        ["train", "status"],
        ["learn"],
        ["learn", "launch"],
        ["learn", "status"],
        ["potential"],
        ["potential", "export"],
        ["potential", "show"],
    ],
)
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_data_import_and_show(tmp_path, argon_structures):
    path = tmp_path / "argon.extxyz"
    write(path, argon_structures["train"], format="extxyz")
    result = invoke("data", "import", path, "--label", "argon", "--quiet")
    assert result.exit_code == 0, result.output
    assert "16 structures, 512 atoms, elements ['Ar'], labelled, with stress" in result.output
    node = orm.QueryBuilder().append(TrainingSetData, filters={"label": "argon"}).first(flat=True)
    assert node.num_structures == 16
    shown = invoke("data", "show", node.pk)
    assert shown.exit_code == 0 and "num_structures           16" in shown.output

    pool = invoke("data", "import", path, "--unlabelled", "--quiet")
    assert pool.exit_code == 0 and "unlabelled" in pool.output


def test_errors_are_one_line(tmp_path):
    unlabelled = tmp_path / "bare.extxyz"
    unlabelled.write_text('1\nProperties=species:S:1:pos:R:3 pbc="F F F"\nAr 0 0 0\n')
    result = CliRunner().invoke(cli, ["data", "import", str(unlabelled), "--quiet"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {unlabelled}: structure 0") and "no energy" in last
    assert last.endswith("import it with --unlabelled for an unlabelled pool") and "labelled=False" not in last
    missing = CliRunner().invoke(cli, ["data", "show", "999999999"])
    assert missing.exit_code == 1 and missing.output.count("\n") == 1 and missing.output.startswith("Error:")
    wrong_type = CliRunner().invoke(cli, ["potential", "export", str(orm.Int(1).store().pk)])
    assert wrong_type.exit_code == 1 and "not a PacePotentialData" in wrong_type.output


@pytest.fixture
def deployable_potential(tmp_path):
    """The recorded Ar potential with a real .yace (pace_yaml2yace) and an LJ baseline."""
    shutil.copy(POTENTIAL, tmp_path / "p.yaml")
    subprocess.run(["pace_yaml2yace", "p.yaml", "-o", "p.yace"], cwd=tmp_path, check=True, capture_output=True)
    return PacePotentialData(tmp_path / "p.yaml", yace=tmp_path / "p.yace", baseline=LJ).store()


def test_potential_export_lammps(deployable_potential, tmp_path):
    out = tmp_path / "lammps"
    result = invoke("potential", "export", deployable_potential.pk, "--format", "lammps", "-o", out, "--name", "ar")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ar.lammps", "ar.yace"]
    lines = (out / "ar.lammps").read_text().splitlines()
    assert "pair_style hybrid/overlay pace lj/smooth/linear 6.5" in lines
    assert "pair_coeff * * pace ar.yace Ar" in lines
    assert (out / "ar.yace").read_bytes() == deployable_potential.base.repository.get_object_content(
        "potential.yace", mode="rb"
    )


def run_snippet(path: pathlib.Path) -> dict:
    """The namespace of the exported Python snippet at ``path``, run in its folder (it names its files relatively)."""
    namespace = {}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        exec(path.read_text(), namespace)  # noqa: S102 - our own generated snippet
    finally:
        os.chdir(cwd)
    return namespace


def test_potential_export_ase_snippet_builds_the_same_calculator(deployable_potential, tmp_path, argon_structures):
    out = tmp_path / "ase"
    result = invoke("potential", "export", deployable_potential.pk, "--format", "ase", "-o", out)
    assert result.exit_code == 0, result.output
    namespace = run_snippet(out / "potential_calculator.py")
    atoms = argon_structures["test"][0].copy()
    atoms.calc = namespace["calculator"]
    exported = atoms.get_potential_energy()
    atoms.calc = deployable_potential.get_calculator()
    assert exported == pytest.approx(atoms.get_potential_energy(), rel=1e-12)


def test_gamma_is_in_the_results_of_the_combined_calculator(tmp_path, argon_structures):
    """`calc.results["gamma"]`, as the tutorial says, on the calculator of a potential with an LJ baseline and an
    active set (ACE + baseline summed), and on the one the exported ASE snippet builds: one value per atom, equal to
    the ACE calculator's own."""
    active_set = FIXTURES / "pace_activeset_success" / "potential.asi"
    node = PacePotentialData(POTENTIAL, active_set=active_set, baseline=LJ).store()
    out = tmp_path / "ase"
    assert invoke("potential", "export", node.pk, "--format", "ase", "-o", out).exit_code == 0
    namespace = run_snippet(out / "potential_calculator.py")
    atoms = argon_structures["test"][0].copy()
    atoms.rattle(0.3, seed=3)  # away from the training environments: γ differs from atom to atom
    ace = node.get_ace_calculator()
    ace.get_potential_energy(atoms)
    for calculator in (node.get_calculator(), namespace["calculator"]):
        calculator.get_potential_energy(atoms)
        assert calculator.results["gamma"].shape == (len(atoms),)
        np.testing.assert_allclose(calculator.results["gamma"], ace.results["gamma"], rtol=1e-12)
    assert np.ptp(ace.results["gamma"]) > 0


def test_potential_show_into_a_closed_pipe_ends_quietly(deployable_potential):
    """`potential show N | head -3` ended with `Error: [Errno 32] Broken pipe`. Here the reader closes the pipe before
    the first line, so every write of the command meets a closed pipe."""
    import sys

    from aiida.manage import get_manager

    profile = get_manager().get_profile().name
    command = [
        sys.executable,
        "-c",
        "from aiida_mlip_trainer.cli import cli; cli()",
        "-p",
        profile,
        "potential",
        "show",
    ]
    process = subprocess.Popen(
        [*command, str(deployable_potential.pk)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == ""


def test_export_without_yace_says_what_to_do(tmp_path):
    node = PacePotentialData(POTENTIAL).store()
    result = CliRunner().invoke(cli, ["potential", "export", str(node.pk), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "has no .yace" in result.output and "Traceback" not in result.output


def test_train_launch_run_and_status(tmp_path, argon_sets, mock_pacemaker_code, pace_tool_codes):
    inputs = {
        "training_set": argon_sets["train"].uuid,
        "test_set": argon_sets["test"].pk,
        "protocol": "fast",
        "overrides": {"training": {"pace": {"parameters": {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}}}}},
        "short_range_check": "warning",
        "codes": {
            "pacemaker": mock_pacemaker_code.full_label,
            **{name: code.full_label for name, code in pace_tool_codes.items()},
        },
    }
    spec = tmp_path / "train.yaml"
    spec.write_text(yaml.safe_dump(inputs))
    result = invoke("train", "launch", spec, "--run")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("test force RMSE:")
    pk = int(result.output.split("TrainingWorkChain<")[1].split(">")[0])
    # while it ran: the work chains' reports as short lines, and where it was (not aiida's logger lines)
    assert "[REPORT]" not in result.output and "aiida.orm.nodes" not in result.output, result.output
    assert "\nTrainingWorkChain: training: PaceTrainBaseWorkChain<" in result.output, result.output
    assert re.search(rf"^TrainingWorkChain<{pk}>($|; )", result.output, re.M), result.output  # the progress line

    status = invoke("train", "status", pk, "--every", "10")
    assert status.exit_code == 0, status.output
    assert "PaceTrainCalculation<" in status.output
    rows = [line.split() for line in status.output.splitlines() if line.strip().split(" ")[0].isdigit()]
    # every 10th iteration of the learning curve and the last one, with the test errors where pacemaker made them
    (calc,) = [n for n in orm.load_node(pk).called_descendants if n.process_label == "PaceTrainCalculation"]
    curve = calc.outputs.learning_curve
    iterations = curve.get_array("train_iteration").tolist()
    assert [int(r[0]) for r in rows] == sorted(set(iterations[::10]) | {iterations[-1]})
    tested = dict(zip(curve.get_array("test_iteration").tolist(), curve.get_array("test_force_rmse"), strict=True))
    for row in rows:
        if int(row[0]) in tested:
            assert float(row[5]) == pytest.approx(tested[int(row[0])], abs=0.006)
        else:
            assert row[4:] == ["-", "-"]
    assert "fitted with python-ace 0.4.0rc1, tensorpotential 0.6.2.1" in status.output
    # the last iteration line of the retrieved log.txt (the fast protocol's maxiter: 100)
    assert re.search(r"^  ended at iteration \d+/100, loss \S+, train E", status.output, re.M), status.output

    shown = invoke("potential", "show", pk)
    assert shown.exit_code == 0, shown.output
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in shown.output.splitlines()[1:])
    potential = orm.load_node(pk).outputs.potential
    assert shown.output.startswith(f"PacePotentialData<{potential.pk}> {potential.uuid}")
    assert "elements                 Ar" in shown.output and "num_functions            36" in shown.output
    assert all(f"potential.{suffix} (" in shown.output for suffix in ("yaml", "yace", "asi"))
    assert "fitted with              python-ace 0.4.0rc1, tensorpotential 0.6.2.1" in shown.output
    fit = next(n for n in orm.load_node(pk).called_descendants if n.process_label == "PaceTrainCalculation")
    assert f"made by                  PaceTrainCalculation<{fit.pk}>" in shown.output
    assert lines  # every line is `key value`


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("protocol: fast\nmaxiter: 5\n", "['maxiter']"),
        ("preset: fast\nmax_structures: 30\n", "['max_structures', 'preset']"),
    ],
)
def test_train_launch_refuses_unknown_keys(tmp_path, text, unknown):
    """One vocabulary: the keys of TRAINING_INPUT_KEYS, nothing else (a protocol's own keys go under overrides)."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(cli, ["train", "launch", str(spec)])
    assert result.exit_code == 1 and f"unknown key(s) {unknown}" in result.output


def test_status_of_a_running_training_reads_the_working_directory(aiida_localhost, generate_calc_job_node, tmp_path):
    """A calculation still running has no retrieved files: the curve comes from its remote working directory."""
    workdir = tmp_path / "running"
    workdir.mkdir()
    lines = (FIXTURES / "pace_train_success" / "metrics.txt").read_text().splitlines()[:6]  # 5 iterations so far
    (workdir / "metrics.txt").write_text("\n".join(lines) + "\n")
    node = generate_calc_job_node("mlip_trainer.pace_train", None, {})
    node.set_process_state("running")
    remote = orm.RemoteData(computer=aiida_localhost, remote_path=str(workdir))
    remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label="remote_folder")
    remote.store()
    result = invoke("train", "status", node.pk, "--every", "2")
    assert result.exit_code == 0, result.output
    assert "running" in result.output
    iterations = [line.split()[0] for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert iterations == ["0", "2", "4"]


def test_the_console_script_is_installed():
    assert pathlib.Path(shutil.which("aiida-mlip-trainer")).exists()


def _one_error_line(result, *fragments):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_read_errors_say_what_and_which_file(tmp_path):
    """They were bare words: `Error: txt`, `Error: 'Xx'`; a NaN coordinate read as "no energy"."""
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    _one_error_line(invoke("data", "import", text, "--quiet"), str(text), "cannot tell its format", "--format")
    unknown = tmp_path / "xx.extxyz"
    unknown.write_text('1\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1 pbc="F F F"\nXx 0 0 0 0 0 0\n')
    _one_error_line(invoke("data", "import", unknown, "--quiet"), str(unknown), "'Xx' is not a chemical symbol")
    nan = tmp_path / "nan.extxyz"
    nan.write_text(
        '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="F F F"\n'
        "Cu 0.0 0.0 0.0 0.1 0.0 0.0\nCu nan 0.0 2.5 -0.1 0.0 0.0\n"
    )
    _one_error_line(invoke("data", "import", nan, "--quiet"), "positions contains NaN or inf (atom 1)")


def test_malformed_yaml_is_one_line_with_the_file_and_the_place(tmp_path):
    spec = tmp_path / "train.yaml"
    spec.write_text("protocol: fast\n  codes: [\n")
    _one_error_line(invoke("train", "launch", spec), str(spec), "not valid YAML: line 2, column 8")


def _all_codes(pacemaker, tools):
    return {"pacemaker": pacemaker.full_label, **{name: code.full_label for name, code in tools.items()}}


def test_launch_refuses_an_unreadable_structures_file_before_any_process(
    tmp_path, mock_pacemaker_code, pace_tool_codes
):
    """It printed two tracebacks and left an Excepted work chain."""
    (tmp_path / "dft.txt").write_text("not a structure file\n")
    spec = tmp_path / "train.yaml"
    codes = _all_codes(mock_pacemaker_code, pace_tool_codes)
    spec.write_text(yaml.safe_dump({"structures_file": "dft.txt", "codes": codes}))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    for mode in ("--run", "--daemon"):
        _one_error_line(invoke("train", "launch", spec, mode), "structures_file dft.txt", "cannot tell its format")
    bad = tmp_path / "bad.extxyz"
    bad.write_text('1\nProperties=species:S:1:pos:R:3 pbc="F F F"\nAr 0 0 0\n')  # no labels
    spec.write_text(yaml.safe_dump({"structures_file": "bad.extxyz", "codes": codes}))
    refused = invoke("train", "launch", spec, "--run")
    _one_error_line(refused, "structures_file bad.extxyz: structure 0", "no energy")
    assert "a training needs energies and forces" in refused.output and "labelled=False" not in refused.output
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_launch_names_the_missing_codes(tmp_path, argon_sets, mock_pacemaker_code):
    spec = tmp_path / "train.yaml"
    spec.write_text(yaml.safe_dump({"training_set": argon_sets["train"].pk, "codes": {"pacemaker": "mock-pacemaker"}}))
    _one_error_line(invoke("train", "launch", spec), "give a code for pace_activeset, pace_yaml2yace")


def test_launch_without_a_broker_says_to_run_here(
    tmp_path, monkeypatch, argon_sets, mock_pacemaker_code, pace_tool_codes
):
    from aiida.manage.configuration.profile import Profile

    spec = tmp_path / "train.yaml"
    codes = _all_codes(mock_pacemaker_code, pace_tool_codes)
    spec.write_text(yaml.safe_dump({"training_set": argon_sets["train"].pk, "codes": codes}))
    monkeypatch.setattr(Profile, "process_control_backend", property(lambda self: None))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    _one_error_line(invoke("train", "launch", spec), "has no broker", "--run")
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.mark.parametrize("every", ["0", "-1"])
def test_status_every_must_be_positive(every):
    result = CliRunner().invoke(cli, ["train", "status", "1", "--every", every])
    assert result.exit_code == 2 and "x>=1" in result.output and "Traceback" not in result.output


def test_potential_show_without_a_fit(tmp_path):
    node = PacePotentialData(POTENTIAL, baseline=LJ).store()
    result = invoke("potential", "show", node.pk)
    assert result.exit_code == 0, result.output
    assert '"type": "lj"' in result.output and "fitted with              unknown" in result.output
    assert "made by                  no fit in this profile" in result.output
