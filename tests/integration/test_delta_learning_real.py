"""Real pacemaker fits on residuals (labels minus a physical baseline), predicted as ACE + baseline."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
from aiida_mlip_trainer.physics.baselines import core_repulsion, core_switch_width
from aiida_mlip_trainer.physics.reference_data import copper_emt, shortest_distance
from aiida_mlip_trainer.workflows.functions.baseline import subtract_baseline

pytestmark = pytest.mark.real_pacemaker

# Deliberately not the LJ that made the labels (epsilon 10.4 meV, sigma 3.4 Å, cut at 7 Å): ACE learns the rest.
LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}


def force_rmse(potential, structures) -> float:
    """Force RMSE (meV/Å per component) of the potential's ASE calculator (ACE + baseline) against the labels."""
    calculator = potential.get_calculator()
    errors = []
    for atoms in structures:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_forces() - atoms.get_forces())
    return 1000 * float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def test_lj_residual_fit_reproduces_the_labels(pacemaker_code, argon_sets, argon_structures, small_parameters):
    baseline = orm.Dict(LJ)
    results, node = run_get_node(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=subtract_baseline(argon_sets["train"], baseline),
        test_set=subtract_baseline(argon_sets["test"], baseline),
        parameters=small_parameters,
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    potential = results["potential"]
    assert potential.baseline == baseline.get_dict()
    for label in ("train", "test"):
        reference_rms = 1000 * argon_sets[label].base.attributes.get("force_component_rms")
        rmse = force_rmse(potential, argon_structures[label])
        assert rmse < 0.10 * reference_rms, (label, rmse, reference_rms)
        # the residual-space error pacemaker reports is the same error: the baseline is exact
        assert rmse == pytest.approx(results["metrics"][label]["force_rmse"], rel=0.02, abs=0.02)


def test_zbl_residual_fit_is_repulsive_at_short_range(pacemaker_code, small_parameters):
    structures = copper_emt(20, seed=3)
    d_min = shortest_distance(structures)
    # ZBL switched off at the shortest training distance: it shapes the sum only where there are no data.
    zbl = orm.Dict({"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": round(d_min, 2)}})
    small_parameters["potential"]["bonds"]["ALL"].update(rcut=5.0, radparameters=[5.25])
    results, node = run_get_node(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=subtract_baseline(TrainingSetData(structures[:16]).store(), zbl),
        test_set=subtract_baseline(TrainingSetData(structures[16:]).store(), zbl),
        parameters=small_parameters,
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    calculator = results["potential"].get_calculator()
    distances = np.linspace(d_min, 0.5, 60)
    energies = []
    for r in distances:
        dimer = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calculator
        energies.append(dimer.get_potential_energy())
    energies = np.array(energies)
    assert np.all(np.diff(energies) > 0), energies  # rises at every step as the distance shrinks
    assert energies[-1] > energies[0] + 100.0  # and strongly: hundreds of eV at 0.5 Å


def test_per_pair_windows_land_in_the_written_potential(tmp_path, small_parameters):
    """A real `pacemaker -dr` on the generated input.yaml: every bond of the unfitted potential (both orders of the
    unlike pair) has its own pair's r_in and delta_in, and `pace_yaml2yace` carries them into the .yace LAMMPS reads."""
    structures = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.symbols[::2] = "Ni"
        atoms.rattle(0.1, seed=seed)
        atoms.calc = EMT()
        structures.append(atoms)
    TrainingSetData(structures).write_pacemaker_pickle(tmp_path / "data.pkl.gz")
    baseline = {
        "type": "zbl",
        "params": {
            "Cu-Cu": {"inner_cutoff": 1.5, "cutoff": 2.0},
            "Ni-Cu": {"inner_cutoff": 1.6, "cutoff": 2.1},
            "Ni-Ni": {"inner_cutoff": 1.7, "cutoff": 2.25},
        },
    }
    small_parameters["potential"]["bonds"]["ALL"]["rcut"] = 5.0
    config = build_input_yaml(small_parameters, elements=["Cu", "Ni"], train_filename="data.pkl.gz", baseline=baseline)
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(config))
    subprocess.run([shutil.which("pacemaker"), "-dr", "input.yaml"], cwd=tmp_path, check=True, capture_output=True)

    from pyace import BBasisConfiguration

    written = {
        tuple(block.elements_vec): (block.inner_cutoff_type, block.r_in, block.delta_in)
        for block in BBasisConfiguration(str(tmp_path / "target_potential.yaml")).funcspecs_blocks
    }
    # ACE is switched off from each pair's outer ZBL cutoff in; over the whole window, or, for a pair whose ZBL climbs
    # too little across it and so gets pacemaker's core repulsion, over its last CORE_SWITCH_FRACTION only.
    windows = {("Cu", "Cu"): (1.5, 2.0), ("Cu", "Ni"): (1.6, 2.1), ("Ni", "Cu"): (1.6, 2.1), ("Ni", "Ni"): (1.7, 2.25)}
    expected = {
        pair: (outer, core_switch_width(outer) if core_repulsion(*pair, inner, outer) else outer - inner)
        for pair, (inner, outer) in windows.items()
    }
    assert set(written) == set(expected)
    for pair, (r_in, delta_in) in expected.items():
        assert written[pair][0] == "distance" and written[pair][1:] == pytest.approx((r_in, delta_in), abs=1e-12), pair

    subprocess.run(
        [shutil.which("pace_yaml2yace"), "target_potential.yaml", "-o", "potential.yace"], cwd=tmp_path, check=True
    )
    # The .yace is YAML with flow-sequence keys ("[0, 1]: {...}"), which safe_load refuses: read the bond lines.
    bonds = re.findall(
        r"\[(\d), (\d)\]: \{.*rcut_in: ([\d.]+), dcut_in: ([\d.]+)", (tmp_path / "potential.yace").read_text()
    )
    elements = ["Cu", "Ni"]  # the .yace numbers elements in this (sorted) order
    in_yace = {(elements[int(i)], elements[int(j)]): (float(r), float(d)) for i, j, r, d in bonds}
    assert set(in_yace) == set(expected)
    for pair, window in expected.items():
        assert in_yace[pair] == pytest.approx(window, abs=1e-12), pair
