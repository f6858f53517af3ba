"""The input.yaml writer and its parameter checks."""

import re

import pytest

from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml, validate_parameters


def test_build_fills_in_what_the_plugin_owns(small_parameters):
    config = build_input_yaml(
        small_parameters, elements=["Ar"], train_filename="train.pckl.gzip", test_filename="test.pckl.gzip"
    )
    assert config["potential"]["elements"] == ["Ar"]
    assert config["cutoff"] == 7.0
    assert config["seed"] == 42
    assert config["data"] == {
        "reference_energy": "auto",
        "filename": "train.pckl.gzip",
        "test_filename": "test.pckl.gzip",
    }
    assert config["backend"]["evaluator"] == "tensorpot"
    assert "elements" not in small_parameters["potential"]  # the caller's dictionary is untouched


@pytest.mark.parametrize(
    ("given", "previous", "expected"),
    [
        (None, None, "auto"),  # a fresh fit: pacemaker's least-squares E0 per element
        (None, {"Ar": -3.5}, {"Ar": -3.5}),  # fine-tuning keeps the previous potential's meaning of energy
        (None, {}, None),  # ... also when that was no reference at all
        ({"Ar": -1.0}, {"Ar": -3.5}, {"Ar": -1.0}),  # the user's choice wins
        (0, None, 0),
    ],
)
def test_reference_energy_default(small_parameters, given, previous, expected):
    if given is not None:
        small_parameters["data"] = {"reference_energy": given}
    config = build_input_yaml(
        small_parameters, elements=["Ar"], train_filename="t.pckl.gzip", previous_reference=previous
    )
    assert config["data"].get("reference_energy") == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(potentiel={}), r"unknown section\(s\) \['potentiel'\]"),
        (lambda p: p.pop("potential"), "need a `potential` section"),
        (lambda p: p["potential"].pop("bonds"), r"lacks \['bonds'\]"),
        (lambda p: p["potential"]["bonds"]["ALL"].update(rcut=-1), "rcut must be a positive number"),
        (lambda p: p["potential"]["bonds"]["ALL"].pop("rcut"), "no `rcut`"),
        (lambda p: p["potential"].update(elements=["Cu"]), r"contain \['Ar'\], which potential.elements"),
        (lambda p: p.update(data={"filename": "/home/me/data.pckl.gzip"}), "writes the dataset file names itself"),
        (lambda p: p.update(data={"test_size": 1.5}), r"fraction in \(0, 1\)"),
        (lambda p: p["fit"].update(maxiter=0), "fit.maxiter must be a positive integer"),
        (lambda p: p["fit"].update(maxiter=True), "fit.maxiter must be a positive integer"),
        (lambda p: p["backend"].update(evaluator="torch"), "backend.evaluator must be one of"),
        (lambda p: p["backend"].update(batch_size=-5), "backend.batch_size must be a positive integer"),
        (lambda p: p.update(seed="lucky"), "seed must be an integer"),
    ],
)
def test_bad_parameters_are_explained(small_parameters, change, message):
    change(small_parameters)
    result = validate_parameters(small_parameters, elements=["Ar"])
    assert result is not None
    assert re.search(message, result), result


def test_valid_parameters_pass(small_parameters):
    assert validate_parameters(small_parameters, elements=["Ar"]) is None


def test_test_size_and_test_set_exclude_each_other(small_parameters):
    small_parameters["data"] = {"test_size": 0.2}
    assert validate_parameters(small_parameters, elements=["Ar"]) is None
    assert "not both" in validate_parameters(small_parameters, elements=["Ar"], has_test_set=True)


# ------------------------------------------------------------------------------ the allow-list (issue 9, item 2)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["fit"].update(weighting={"type": "ExternalWeightingPolicy", "filename_or_df": "w.pckl.gzip"}),
            r"ExternalWeightingPolicy makes pacemaker unpickle a weights file .* use EnergyBasedWeightingPolicy",
        ),
        (
            lambda p: p["fit"].update(weighting={"type": "EnergyBasedWeightingPolicy", "filename_or_df": "w.pckl"}),
            "unpickle a weights file",
        ),
        (lambda p: p["potential"].update(filename="/home/me/pot.yaml"), r"potential.filename .*`previous_potential`"),
        (
            lambda p: p["potential"].update(initial_potential="/home/me/pot.yaml"),
            r"potential.initial_potential is not accepted: .*`previous_potential` input",
        ),
        (lambda p: p["fit"].update(callbacks=["os.system"]), r"fit.callbacks is not accepted: pacemaker imports"),
        (lambda p: p.update(metadata={"comment": "x"}), "metadata is not accepted"),
        (lambda p: p.update(data={"datapath": "/data"}), "writes the dataset file names itself"),
        (lambda p: p["fit"].update(ladder_step=100), "ladder .* fitting is not supported"),
        (lambda p: p["potential"]["bonds"]["ALL"].update(rcutt=6.0), r"unknown key 'potential.bonds.ALL.rcutt'"),
        (lambda p: p["fit"]["loss"].update(kapa=0.5), r"unknown key 'fit.loss.kapa'"),
        (lambda p: p["backend"].update(imagetype="png"), "backend.imagetype is not accepted"),
        (lambda p: p["potential"]["bonds"].update({"Ar\nshell": {}}), "not a chemical element symbol"),
        (lambda p: p["potential"].update(elements=["Ar", "Cu "]), r"'Cu ' is not a chemical element symbol"),
        (
            lambda p: p["potential"]["embeddings"]["ALL"].update(npot="/etc/passwd"),
            r"npot is '/etc/passwd', which looks like a file path",
        ),
        (lambda p: p["fit"].update(options={"gtol": "1e-8; os.system"}), "fit.options must be a dictionary"),
        (lambda p: p["fit"].update(optimizer="BFGS; rm -rf ~"), "fit.optimizer must be one of"),
        (lambda p: p.update(data={"reference_energy": "../ref.yaml"}), "data.reference_energy must be"),
        (lambda p: p.update(data={"reference_energy": {"Ar ": -0.1}}), "not a chemical element symbol"),
        (lambda p: p["backend"].update(gpu_config={"gpu_ind": "0"}), "gpu_config.gpu_ind must be an integer"),
        (lambda p: p["fit"].update(repulsion="zbl"), "fit.repulsion can only be 'auto'"),
        (lambda p: p["fit"].update(maxiter=float("nan")), "fit.maxiter must be a positive integer"),
    ],
)
def test_keys_that_read_files_or_run_code_are_refused(small_parameters, change, message):
    change(small_parameters)
    result = validate_parameters(small_parameters, elements=["Ar"])
    assert result is not None and re.search(message, result), result
    assert "\n" not in result


def test_zbl_repulsion_of_pacemaker_on_a_zbl_residual_is_refused(small_parameters):
    small_parameters["fit"]["repulsion"] = "auto"
    assert validate_parameters(small_parameters) is None
    zbl = {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}
    assert "count twice" in validate_parameters(small_parameters, baseline=zbl)


def _rich_parameters(small_parameters):
    """Many allowed keys at once, each with a value pacemaker 0.4.0rc1 accepts."""
    rich = small_parameters
    rich["potential"].update(elements=["Ar"])
    rich["potential"]["bonds"]["ALL"].update(r_in=1.0, delta_in=0.5, inner_cutoff_type="distance")
    rich["potential"]["bonds"]["ALL"]["core-repulsion"] = [100.0, 5.0]
    rich["potential"]["embeddings"]["Ar"] = {"rho_core_cut": 200, "drho_core_cut": 250}
    rich["potential"]["functions"]["number_of_functions_per_element"] = 30
    rich["fit"].update(
        weighting={"type": "EnergyBasedWeightingPolicy", "DElow": 1.0, "DEup": 10.0, "DE": 1.0, "DF": 1.0, "seed": 1},
        fit_cycles=2,
        options={"gtol": 1e-8, "maxcor": 20},
        trainable_parameters=["func", "radial"],
        min_relative_train_loss_per_iter=1e-5,
        early_stopping_patience=20,
    )
    rich["backend"].update(batch_size_reduction=True, gpu_config={"gpu_ind": -1, "mem_limit": 0})
    rich.update(data={"test_size": 0.1, "reference_energy": {"Ar": -0.1, "shift": 0.0}}, seed=7, cutoff=7.0)
    return rich


def test_every_setting_the_plugin_uses_is_allowed(small_parameters):
    """The protocols, the tests' and examples' settings, and the pacemaker options a user commonly sets."""
    from aiida_mlip_trainer.workflows.pace_train_base import PaceTrainBaseWorkChain

    for protocol in ("fast", "moderate", "precise"):
        parameters = PaceTrainBaseWorkChain.get_protocol_inputs(protocol)["pace"]["parameters"]
        assert validate_parameters(parameters, elements=["Cu"]) is None, protocol
    assert validate_parameters(_rich_parameters(small_parameters), elements=["Ar"]) is None


@pytest.mark.real_pacemaker
def test_the_allowed_keys_are_keys_pacemaker_reads(small_parameters, argon_structures, tmp_path):
    """`pacemaker --dry-run` on an input.yaml with many allowed keys: python-ace reads them all and starts."""
    import shutil
    import subprocess

    import yaml

    from aiida_mlip_trainer.data import TrainingSetData

    config = build_input_yaml(_rich_parameters(small_parameters), elements=["Ar"], train_filename="train.pckl.gzip")
    config["data"].pop("test_size")  # the dry run needs no split
    TrainingSetData(argon_structures["train"]).write_pacemaker_pickle(tmp_path / "train.pckl.gzip")
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [shutil.which("pacemaker"), "input.yaml", "--dry-run"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    assert "EnergyBasedWeightingPolicy" in log and "Dry run is finished" in log


def test_build_refuses_what_validation_refuses(small_parameters):
    small_parameters["fit"]["callbacks"] = ["os.system"]
    with pytest.raises(ValueError, match="fit.callbacks is not accepted"):
        build_input_yaml(small_parameters, elements=["Ar"], train_filename="t.pckl.gzip")
