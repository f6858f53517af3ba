"""Delta learning in the plugin: residual training sets, baseline-aware input.yaml, ACE + baseline predictions."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.calculators.mixing import SumCalculator

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml, validate_parameters
from aiida_mlip_trainer.physics.baselines import baseline_calculator, core_repulsion, core_switch_width
from aiida_mlip_trainer.workflows.functions.baseline import subtract_baseline
from tests.conftest import FIXTURES

LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}
ZBL = {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}
POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"


def test_subtract_baseline_is_a_calcfunction_and_exact(argon_sets, argon_structures):
    original = argon_sets["train"]
    residual = subtract_baseline(original, orm.Dict(LJ))
    assert residual.is_stored and residual.base.attributes.get("baseline")["type"] == "lj"
    creator = residual.base.links.get_incoming().one().node
    assert isinstance(creator, orm.CalcFunctionNode)
    assert creator.inputs.training_set.pk == original.pk

    calc = baseline_calculator(LJ)
    before, after = original.get_arrays(), residual.get_arrays()
    offset = 0
    for index, atoms in enumerate(argon_structures["train"]):
        atoms = atoms.copy()
        atoms.calc = calc
        n = len(atoms)
        # subtract, then add the baseline back: the original labels, to the last few bits
        np.testing.assert_allclose(
            after["energy"][index] + atoms.get_potential_energy(), before["energy"][index], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            after["forces"][offset : offset + n] + atoms.get_forces(),
            before["forces"][offset : offset + n],
            rtol=0,
            atol=1e-12,
        )
        np.testing.assert_allclose(
            after["stress"][index] + atoms.get_stress(), before["stress"][index], rtol=0, atol=1e-14
        )
        offset += n
    # structures untouched
    np.testing.assert_array_equal(after["positions"], before["positions"])


def test_subtract_baseline_refuses_bad_input(argon_sets, argon_structures):
    with pytest.raises(ValueError, match="known types: lj, zbl"):
        subtract_baseline(argon_sets["train"], orm.Dict({"type": "morse", "params": {}}))
    residual = subtract_baseline(argon_sets["train"], orm.Dict(LJ))
    with pytest.raises(ValueError, match="already a residual"):
        subtract_baseline(residual, orm.Dict(LJ))
    pool = TrainingSetData(argon_structures["test"], labelled=False)
    with pytest.raises(ValueError, match="labelled"):
        subtract_baseline(pool, orm.Dict(LJ))


def test_zbl_baseline_switches_ace_off_inside_the_zbl_window(small_parameters):
    config = build_input_yaml(small_parameters, elements=["Ar"], train_filename="t.pckl.gzip", baseline=ZBL)
    bond = config["potential"]["bonds"]["ALL"]
    assert (bond["inner_cutoff_type"], bond["r_in"], bond["delta_in"]) == ("distance", 2.0, 1.0)
    assert "r_in" not in small_parameters["potential"]["bonds"]["ALL"]
    plain = build_input_yaml(small_parameters, elements=["Ar"], train_filename="t.pckl.gzip", baseline=LJ)
    assert "r_in" not in plain["potential"]["bonds"]["ALL"]
    small_parameters["potential"]["bonds"]["ALL"]["inner_cutoff_type"] = "zbl"
    assert "count the repulsion twice" in validate_parameters(small_parameters, baseline=ZBL)
    assert validate_parameters(small_parameters) is None  # pacemaker's own ZBL core is fine for a direct fit


ZBL_PER_PAIR = {
    "type": "zbl",
    "params": {
        "ALL": {"inner_cutoff": 1.5, "cutoff": 2.0},
        "Ni-Cu": {"inner_cutoff": 1.6, "cutoff": 2.1},
        "Ni-Ni": {"inner_cutoff": 1.7, "cutoff": 2.25},
    },
}


def test_per_pair_zbl_switches_ace_off_per_bond(small_parameters):
    """Per-pair windows become one bond block per element pair (python-ace's "A B" keys), over the ALL block."""
    config = build_input_yaml(
        small_parameters, elements=["Ni", "Cu"], train_filename="t.pckl.gzip", baseline=ZBL_PER_PAIR
    )
    bonds = config["potential"]["bonds"]
    assert bonds["ALL"] == small_parameters["potential"]["bonds"]["ALL"]  # the defaults untouched
    windows = {
        key: (b["inner_cutoff_type"], b["r_in"], round(b["delta_in"], 12)) for key, b in bonds.items() if key != "ALL"
    }
    # each of these pairs also gets a core repulsion (its ZBL climbs less than the wall across the window), so ACE is
    # switched off, and the core on, over the last 5 % of the window only (baselines.core_switch_width)
    assert windows == {
        "Cu Cu": ("distance", 2.0, core_switch_width(2.0)),
        "Cu Ni": ("distance", 2.1, core_switch_width(2.1)),
        "Ni Ni": ("distance", 2.25, core_switch_width(2.25)),
    }


def test_per_pair_zbl_merges_into_the_users_blocks_and_respects_their_r_in(small_parameters):
    bonds = small_parameters["potential"]["bonds"]
    bonds["Ni Cu"] = {"rcut": 6.0}  # the user's own block for the pair, in the other order than the plugin writes
    bonds["Ni"] = {"r_in": 1.9, "delta_in": 0.2}  # the user chose Ni-Ni's inner cutoff: left alone
    config = build_input_yaml(
        small_parameters, elements=["Cu", "Ni"], train_filename="t.pckl.gzip", baseline=ZBL_PER_PAIR
    )
    written = config["potential"]["bonds"]
    assert written["Ni Cu"] == {
        "rcut": 6.0,
        "inner_cutoff_type": "distance",
        "r_in": 2.1,
        "delta_in": core_switch_width(2.1),
        # ZBL climbs 10 eV across Cu-Ni's window, less than the wall: pacemaker's core repulsion tops it up
        "core-repulsion": core_repulsion("Cu", "Ni", 1.6, 2.1),
    }
    assert written["Ni"] == {"r_in": 1.9, "delta_in": 0.2}
    assert set(written) == {"ALL", "Ni Cu", "Ni", "Cu Cu"}
    # an r_in in ALL applies to every pair: nothing is added
    small_parameters["potential"]["bonds"] = {"ALL": {**bonds["ALL"], "r_in": 1.0, "delta_in": 0.1}}
    config = build_input_yaml(
        small_parameters, elements=["Cu", "Ni"], train_filename="t.pckl.gzip", baseline=ZBL_PER_PAIR
    )
    assert set(config["potential"]["bonds"]) == {"ALL"}
    # and pacemaker's own ZBL core is still refused on a (per-pair) ZBL residual
    small_parameters["potential"]["bonds"]["Cu Ni"] = {"inner_cutoff_type": "zbl"}
    assert "count the repulsion twice" in validate_parameters(small_parameters, baseline=ZBL_PER_PAIR)


def test_potential_with_baseline_predicts_ace_plus_baseline(argon_structures):
    plain = PacePotentialData(POTENTIAL)
    delta = PacePotentialData(POTENTIAL, baseline=LJ)
    assert isinstance(delta.get_calculator(), SumCalculator)
    atoms = argon_structures["test"][0].copy()
    parts = []
    for calc in (plain.get_calculator(), baseline_calculator(LJ), delta.get_calculator()):
        atoms.calc = calc
        parts.append((atoms.get_potential_energy(), atoms.get_forces().copy(), atoms.get_stress().copy()))
    for index in range(3):
        np.testing.assert_allclose(parts[2][index], parts[0][index] + parts[1][index], rtol=1e-12, atol=1e-12)


def test_lammps_lines_of_a_potential():
    assert PacePotentialData(POTENTIAL).lammps_commands() == ["pair_style pace", "pair_coeff * * potential.yace Ar"]
    lines = PacePotentialData(POTENTIAL, baseline=LJ).lammps_commands("ar.yace")
    assert lines[0].startswith("pair_style hybrid/overlay pace lj/smooth/linear")
    assert "pair_coeff * * pace ar.yace Ar" in lines
    assert any(line.startswith("pair_coeff 1 1 lj/smooth/linear") for line in lines)


def test_training_refuses_mixed_baselines(mock_pacemaker_code, argon_sets, small_parameters):
    residual = subtract_baseline(argon_sets["train"], orm.Dict(LJ))
    with pytest.raises(ValueError, match="same baseline"):
        run_get_node(
            PaceTrainCalculation,
            code=mock_pacemaker_code,
            training_set=residual,
            test_set=argon_sets["test"],
            parameters=small_parameters,
        )
    with pytest.raises(ValueError, match="fine-tuning must keep the baseline"):
        run_get_node(
            PaceTrainCalculation,
            code=mock_pacemaker_code,
            training_set=residual,
            parameters=small_parameters,
            previous_potential=PacePotentialData(POTENTIAL),
        )


def test_residual_fit_records_the_baseline(mock_pacemaker_code, argon_sets, small_parameters):
    residual = subtract_baseline(argon_sets["train"], orm.Dict(LJ))
    results, node = run_get_node(
        PaceTrainCalculation, code=mock_pacemaker_code, training_set=residual, parameters=small_parameters
    )
    assert node.is_finished_ok
    assert results["potential"].baseline == residual.base.attributes.get("baseline")
