"""gracemaker's input.yaml: the plugin's defaults (FS preset, stress in the loss), the user's sections, the refusals."""

import pytest

from aiida_mlip_trainer.formats.grace_input import (
    ADAM_DEFAULTS,
    DEFAULT_FIT,
    DEFAULT_FS_KWARGS,
    build_grace_input,
    stress_weight,
    validate_grace_parameters,
)


def build(parameters, **kwargs):
    return build_grace_input(parameters, elements=["Cu"], train_filename="train.pckl.gzip", **kwargs)


def test_defaults_fit_energy_forces_and_stress_with_the_fs_preset():
    config = build({}, test_filename="test.pckl.gzip")
    assert config["potential"] == {"preset": "FS", "kwargs": DEFAULT_FS_KWARGS, "elements": ["Cu"]}
    loss = config["fit"]["loss"]
    assert set(loss) == {"energy", "forces", "stress"}
    assert loss["stress"] == {"weight": 1000.0, "type": "square"}
    assert config["data"] == {
        "reference_energy": "auto",
        "filename": "train.pckl.gzip",
        "test_filename": "test.pckl.gzip",
        "stress_units": "eV/A3",  # ASE's stress, as the datasets hold it
    }
    assert config["fit"]["progressbar"] is False and config["seed"] == 1


def test_the_fit_is_bfgs_and_adam_gets_its_learning_rate_only_when_chosen():
    # BFGS by default: none of Adam's options reach scipy's minimize (it would warn and ignore them)
    fit = build({})["fit"]
    assert fit["optimizer"] == "BFGS" and fit["maxiter"] == DEFAULT_FIT["maxiter"]
    assert not set(ADAM_DEFAULTS) & set(fit), fit
    assert not set(ADAM_DEFAULTS) & set(build({"fit": {"optimizer": "L-BFGS-B"}})["fit"])
    # Adam: its learning rate and schedule, the user's over them
    adam = build({"fit": {"optimizer": "Adam", "scheduler": "linear_decay"}})["fit"]
    assert adam["opt_params"] == ADAM_DEFAULTS["opt_params"] and adam["scheduler"] == "linear_decay"
    assert adam["scheduler_params"] == ADAM_DEFAULTS["scheduler_params"]
    # scipy's own options for BFGS pass as given
    assert build({"fit": {"opt_params": {"gtol": 1e-6}}})["fit"]["opt_params"] == {"gtol": 1e-6}


def test_reference_energies_are_written_out_unless_the_user_chose():
    assert build({}, reference_energy={"Cu": -3.5})["data"]["reference_energy"] == {"Cu": -3.5}
    assert build({}, reference_energy={})["data"]["reference_energy"] == 0  # a predecessor without E0
    assert build({"data": {"reference_energy": 0}}, reference_energy={"Cu": -3.5})["data"]["reference_energy"] == 0


def test_least_squares_reference_energies_recover_e0_per_element():
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mlip_trainer.physics.reference_energy import least_squares_reference_energies
    from aiida_mlip_trainer.physics.training_arrays import arrays_from_atoms

    e0 = {"Cu": -3.5, "Ni": -5.25}
    structures = []
    for symbols in ("Cu2", "CuNi", "Ni3", "Cu3Ni"):
        atoms = Atoms(symbols, positions=[[2.5 * i, 0, 0] for i in range(len(Atoms(symbols)))], cell=[20, 20, 20])
        energy = sum(e0[s] for s in atoms.get_chemical_symbols())
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=[[0.0, 0.0, 0.0]] * len(atoms))
        structures.append(atoms)
    found = least_squares_reference_energies(arrays_from_atoms(structures))
    assert found == pytest.approx(e0)


def test_user_weights_and_a_number_as_the_weight_of_a_square_loss():
    config = build(
        {"fit": {"loss": {"energy": 2, "forces": {"weight": 10, "type": "huber", "delta": 0.1}, "stress": 50}}}
    )
    assert config["fit"]["loss"] == {
        "energy": {"weight": 2, "type": "square"},
        "forces": {"weight": 10, "type": "huber", "delta": 0.1},
        "stress": {"weight": 50, "type": "square"},
    }
    assert stress_weight({"fit": {"loss": {"stress": 50}}}) == 50.0


def test_stress_weight_zero_or_no_stress_labels_leave_the_stress_term_out():
    assert "stress" not in build({"fit": {"loss": {"energy": 1, "forces": 5, "stress": 0}}})["fit"]["loss"]
    assert "stress" not in build({}, has_stress=False)["fit"]["loss"]
    assert stress_weight({"fit": {"loss": {"energy": 1}}}) == 0.0 and stress_weight({}) == 1000.0


@pytest.mark.parametrize(
    "parameters, has_stress, message",
    [
        ({"potential": {"preset": "GRACE_2LAYER_latest"}}, None, "only ['FS']"),
        ({"potential": {"kwargs": {"n_rad_max": 4, "mlp": 1}}}, None, "unknown key 'potential.kwargs.mlp'"),
        ({"data": {"filename": "/etc/passwd"}}, None, "data.filename"),
        ({"data": {"stress_units": "GPa"}}, None, "data.stress_units"),
        ({"fit": {"loss": {"stress": -1}}}, None, "fit.loss.stress.weight must be a number >= 0"),
        ({"fit": {"loss": {"forces": {"weight": 1, "type": "mae"}}}}, None, "fit.loss.forces.type"),
        ({"fit": {"optimizer": "SGD"}}, None, "fit.optimizer"),
        ({"fit": {"maxiter": 0}}, None, "fit.maxiter must be a positive integer"),
        ({"data": {"reference_energy": "VASP_PBE"}}, None, "data.reference_energy"),
        ({"seed": "1; rm -rf x"}, None, "seed must be a positive integer"),
        ({"fit": {"opt_params": {"learning_rate": "../x"}}}, None, "looks like a file path"),
        ({}, False, "no stress labels"),
    ],
)
def test_refused_with_what_to_change(parameters, has_stress, message):
    error = validate_grace_parameters(parameters, has_stress=has_stress)
    assert error is not None and message in error, error
    if has_stress is None:  # the writer checks again what it writes (parameters may come from a node)
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            build(parameters)


def test_valid_parameters_pass():
    parameters = {
        "cutoff": 5.0,
        "seed": 3,
        "potential": {"preset": "FS", "kwargs": {"lmax": [3, 3], "n_rad_max": [4, 3], "max_order": 2}},
        "fit": {"loss": {"energy": 1, "forces": 5, "stress": 100}, "maxiter": 10, "optimizer": "L-BFGS-B"},
        "data": {"reference_energy": {"Cu": -0.1}},
    }
    assert validate_grace_parameters(parameters, has_stress=True) is None
