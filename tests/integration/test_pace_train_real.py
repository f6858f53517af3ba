"""Real pacemaker (tensorpot backend, CPU) through PaceTrainCalculation: a fit, its quality, and a continuation.

About 40 s each on two cores; the first fit is run once and shared. CI runs them: they are the proof that the plugin
trains for real.
"""

import numpy as np
import pytest
import yaml
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation

pytestmark = pytest.mark.real_pacemaker

# Labels the size of DFT total energies (CP2K's silicon: about -107 eV/atom): an ACE model has no constant term, so
# the fit needs pacemaker's reference energy, and predictions must add it back.
DFT_LIKE_OFFSET = -107.0  # eV/atom


def _offset(structures):
    from ase.calculators.singlepoint import SinglePointCalculator

    shifted = []
    for atoms in structures:
        copy = atoms.copy()
        results = {key: atoms.calc.results[key] for key in ("forces", "stress")}
        copy.calc = SinglePointCalculator(
            copy, energy=atoms.get_potential_energy() + DFT_LIKE_OFFSET * len(atoms), **results
        )
        shifted.append(copy)
    return shifted


@pytest.fixture
def dft_like_structures(argon_structures):
    return {name: _offset(structures) for name, structures in argon_structures.items()}


_FIRST_FIT: dict = {}


@pytest.fixture
def first_fit(pacemaker_code, dft_like_structures, small_parameters):
    """One real fit for the tests of this module, run by the first that asks (about 40 s). Kept here rather than in a
    module-scoped fixture, which could not use the function-scoped code and computer fixtures of aiida-core."""
    from aiida_mlip_trainer.data import TrainingSetData

    if not _FIRST_FIT:
        results, node = run_get_node(
            PaceTrainCalculation,
            code=pacemaker_code,
            training_set=TrainingSetData(dft_like_structures["train"]).store(),
            test_set=TrainingSetData(dft_like_structures["test"]).store(),
            parameters=small_parameters,
        )
        assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
        _FIRST_FIT.update(results=results, node=node)
    return _FIRST_FIT["results"], _FIRST_FIT["node"]


def test_real_fit_is_accurate_and_predicts_in_ase(first_fit, dft_like_structures):
    results, node = first_fit
    # pacemaker subtracted its least-squares reference energy (input.yaml: auto); the potential carries it.
    input_yaml = node.outputs.retrieved.base.repository.get_object_content("input.yaml")
    assert "reference_energy: auto" in input_yaml
    (reference,) = results["potential"].reference_energy.values()
    assert reference == pytest.approx(DFT_LIKE_OFFSET, abs=0.1)  # LJ argon: about -0.07 eV/atom on top
    metrics = results["metrics"].get_dict()
    reference_rms = metrics["reference"]["test"]["force_component_rms"]
    test_rmse = metrics["test"]["force_rmse"]
    # Absolute and relative: predicting zero force would pass the first (reference RMS ~ 65 meV/Å) but not both.
    assert test_rmse < 100.0, metrics["test"]
    assert test_rmse < 0.10 * reference_rms, (test_rmse, reference_rms)
    assert metrics["iterations"] == 100

    # The potential node loads in ASE; its predictions on the test set reproduce pacemaker's own test errors.
    # ... and its total energies: the reference energy is added back (without it they would be 107 eV/atom off).
    calculator = results["potential"].get_calculator()
    predicted, reference, energy_errors, energies = [], [], [], []
    for atoms in dft_like_structures["test"]:
        reference.append(atoms.get_forces().ravel())
        copy = atoms.copy()
        copy.calc = calculator
        predicted.append(copy.get_forces().ravel())
        energy_errors.append((copy.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    ase_rmse = 1000 * np.sqrt(np.mean((np.concatenate(predicted) - np.concatenate(reference)) ** 2))
    assert ase_rmse == pytest.approx(test_rmse, rel=0.02, abs=0.02)
    energy_rmse = 1000 * np.sqrt(np.mean(np.square(energy_errors)))  # meV/atom
    assert energy_rmse == pytest.approx(metrics["test"]["energy_rmse"], rel=0.05, abs=0.05)
    assert energy_rmse < 0.2 * 1000 * np.std(energies), (energy_rmse, 1000 * np.std(energies))


def test_real_continuation_starts_where_the_first_fit_ended(first_fit, pacemaker_code, small_parameters):
    first_results, first_node = first_fit
    first = first_results["metrics"].get_dict()
    small_parameters["fit"]["maxiter"] = 10
    results, node = run_get_node(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=first_node.inputs.training_set,
        test_set=first_node.inputs.test_set,
        parameters=small_parameters,
        previous_potential=first_results["potential"],
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    second = results["metrics"].get_dict()
    # Iteration 0 of the continuation evaluates the first fit's final potential on the same data.
    assert second["initial_loss"] == pytest.approx(first["final_loss"], rel=0.02)
    assert second["initial_loss"] < 0.05 * first["initial_loss"]
    assert second["final_loss"] <= second["initial_loss"]
    # The continuation subtracts the first fit's reference energy, not one of its own.
    assert results["potential"].reference_energy == first_results["potential"].reference_energy
    input_yaml = node.outputs.retrieved.base.repository.get_object_content("input.yaml")
    assert yaml.safe_load(input_yaml)["data"]["reference_energy"] == first_results["potential"].reference_energy
    # provenance: the new fit's input is the first fit's output
    assert node.inputs.previous_potential.base.links.get_incoming().one().node.pk == first_node.pk


def test_real_soft_walltime_stop_returns_the_interim_potential(pacemaker_code, argon_sets, small_parameters):
    """A fit far longer than its walltime: the watchdog stops pacemaker, the interim potential comes back.

    The stop must come after pacemaker has fitted a while, and how long pacemaker takes to load TensorFlow and reach
    its first iterations depends on the machine and its load (on two loaded cores it had not finished its first
    iteration 90 s after the start): from 100 s, the walltime is doubled while the watchdog stopped the fit before
    ten iterations, so the test waits for the job, not for a time guessed in advance. The fit itself cannot finish
    in any of these walltimes (100 000 iterations, hours)."""
    maxiter = 100_000
    small_parameters["fit"]["maxiter"] = maxiter
    too_early = []
    for walltime in (100, 200, 400, 800):
        results, node = run_get_node(
            PaceTrainCalculation,
            code=pacemaker_code,
            training_set=argon_sets["train"],
            test_set=argon_sets["test"],
            parameters=small_parameters,
            metadata={"options": {"max_wallclock_seconds": walltime}},
        )
        codes = PaceTrainCalculation.exit_codes
        stopped_with_interim = node.exit_status == codes.ERROR_OUT_OF_WALLTIME.status
        if not (
            node.exit_status == codes.ERROR_KILLED_BEFORE_INTERIM.status
            or (stopped_with_interim and results["metrics"]["iterations"] < 10)
        ):
            break
        too_early.append(f"{walltime} s: [{node.exit_status}] {node.exit_message}")
    assert node.exit_status == PaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status, (
        node.exit_message,
        too_early,
    )
    retrieved = node.outputs.retrieved.base.repository
    assert retrieved.get_object_content("pacemaker.exit_status").strip() == "143"  # SIGTERM from the watchdog
    metrics = results["metrics"].get_dict()
    assert metrics["interim"] is True and 0 < metrics["iterations"] < maxiter
    # the interim potential is a usable potential, better than the start of the fit
    assert results["potential"].num_functions == 36
    assert metrics["final_loss"] < 0.5 * metrics["initial_loss"]
