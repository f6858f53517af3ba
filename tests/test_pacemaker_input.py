"""The input.yaml writer and its parameter checks."""

import re

import pytest

from aiida_mlip_trainer.pacemaker_input import build_input_yaml, validate_parameters


def test_build_fills_in_what_the_plugin_owns(small_parameters):
    config = build_input_yaml(
        small_parameters, elements=["Ar"], train_filename="train.pckl.gzip", test_filename="test.pckl.gzip"
    )
    assert config["potential"]["elements"] == ["Ar"]
    assert config["cutoff"] == 7.0
    assert config["seed"] == 42
    assert config["data"] == {"filename": "train.pckl.gzip", "test_filename": "test.pckl.gzip"}
    assert config["backend"]["evaluator"] == "tensorpot"
    assert "elements" not in small_parameters["potential"]  # the caller's dictionary is untouched


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
