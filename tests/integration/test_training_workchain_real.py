"""TrainingWorkChain end to end with the real pacemaker tools: without and with a baseline, fine-tuning from the
output, and one submission through a real daemon."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.physics.reference_data import alloy_emt, argon_lennard_jones, copper_emt, shortest_distance
from aiida_mlip_trainer.workflows import TrainingWorkChain

pytestmark = pytest.mark.real_pacemaker

ARGON = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}, "fit": {"maxiter": 80}}


def fast(codes, structures, parameters=ARGON, **overrides):
    """The fast protocol with these pacemaker ``parameters`` merged in, and other ``overrides``."""
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes, structures, "fast", {"training": {"pace": {"parameters": parameters}}, **overrides}
    )
    builder.short_range_check = orm.Str("warning")  # direct fits: the check reports, the chain does not fail on it
    return builder


@pytest.fixture
def codes(pacemaker_code, pace_tool_codes):
    return {"pacemaker": pacemaker_code, **pace_tool_codes}


def training_calculation(workchain):
    """The PaceTrainCalculation that produced the work chain's potential."""
    calcs = [
        n
        for n in workchain.called_descendants
        if isinstance(n, orm.CalcJobNode)
        and n.process_type == "aiida.calculations:mlip_trainer.pace_train"
        and n.is_finished_ok
    ]
    (calc,) = calcs
    return calc


def test_real_chain_then_fine_tuning_on_new_data(codes, argon_structures):
    data = TrainingSetData(argon_structures["train"] + argon_structures["test"]).store()
    results, node = run_get_node(fast(codes, data, test_fraction=0.2))
    assert node.is_finished_ok, node.exit_message
    metrics = results["metrics"].get_dict()
    assert metrics["force_rmse"] < 0.10 * metrics["reference"]["force_component_rms"], metrics
    assert metrics["energy_rmse"] < 0.5 * metrics["reference"]["energy_per_atom_std"], metrics
    assert "stress_rmse" in metrics  # pacemaker does not fit stress: this is where it is checked
    first = results["potential"]
    assert first.has_active_set and first.base.attributes.get("has_yace")
    atoms = argon_structures["test"][0].copy()
    atoms.calc = first.get_ace_calculator()
    atoms.get_potential_energy()
    assert np.max(atoms.calc.results["gamma"]) < 5  # in the training domain: no extrapolation

    # new data from a wider distribution; fine-tune from the first potential
    new = TrainingSetData(argon_lennard_jones(10, seed=7, strain=0.05, rattle=0.15)).store()
    builder = fast(codes, new, {**ARGON, "fit": {"maxiter": 30}}, test_fraction=0.2)
    builder.previous_potential = first
    tuned, tuned_node = run_get_node(builder)
    assert tuned_node.is_finished_ok, tuned_node.exit_message
    calc = training_calculation(tuned_node)
    # the graph links the new potential to the previous one, and the fit started from its weights
    assert calc.inputs.previous_potential.pk == first.pk
    lineage = orm.QueryBuilder()
    lineage.append(PacePotentialData, filters={"id": tuned["potential"].pk}, tag="new")
    lineage.append(PacePotentialData, filters={"id": first.pk}, with_descendants="new")
    assert lineage.distinct().count() == 1
    first_calc = training_calculation(node)
    assert calc.outputs.metrics["initial_loss"] < 0.2 * first_calc.outputs.metrics["initial_loss"]


def test_real_chain_with_zbl_baseline_and_selection(codes, properties_code, ase_oracle_code):
    """With the materials properties of the fitted ACE potential (plus its ZBL baseline) against the EMT oracle: on
    the potential's geometries and after EMT's own relaxation."""
    structures = copper_emt(26, seed=5)
    d_min = shortest_distance(structures)
    builder = fast(
        codes,
        TrainingSetData(structures).store(),
        {"fit": {"maxiter": 80}},
        test_fraction=0.2,
        selection={"max_structures": 12},
    )
    builder.physics_baseline = orm.Dict({"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": round(d_min, 2)}})
    builder.properties = {
        "job": {
            "code": properties_code,
            "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True)),
            "parameters": orm.Dict(
                {
                    "eos": {"points": 5},
                    "elastic": {"points": 2},
                    "vacancy": {"supercell": [2, 2, 2]},
                    "surface": {"miller": [[1, 1, 1]], "layers": 4, "vacuum": 6.0},
                    "phonons": {},
                    "md": {"temperature": 300.0, "picoseconds": 0.4, "supercell": [2, 2, 2]},
                }
            ),
        },
        "labeling": {"oracle": ase_oracle(ase_oracle_code, "emt"), "max_concurrent": orm.Int(4)},
        "oracle_relaxation": orm.Bool(True),
    }
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    rows = {row["property"]: row for row in results["property_table"]["rows"]}
    # every property of the fitted potential, each with EMT's value on the same geometries and after its own relaxation
    assert {"a0", "B0", "C11", "C12", "C44", "vacancy", "surface(111)"} <= set(rows)
    assert all("reference" in row and "reference_relaxed" in row for row in rows.values())
    assert np.isfinite([row["potential"] for row in rows.values()]).all()
    assert results["property_table"]["md"]["stopped"] is None  # 300 K near its data: MD stays physical
    # fitted to EMT copper strained by up to 3 %: the lattice to a fraction of a percent, B0 and C11 within 15 %
    assert abs(rows["a0"]["reference_relaxed_relative_error"]) < 0.005
    for name in ("B0", "C11"):
        assert abs(rows[name]["reference_relative_error"]) < 0.15, rows[name]
    # the property job ran on the final potential, with its baseline
    job = next(n for n in node.called_descendants if n.process_type.endswith("calculations:mlip_trainer.properties")
               and "potential" in n.inputs)  # fmt: skip
    assert job.inputs.potential.pk == results["potential"].pk
    assert results["training_set"].num_structures <= 12
    metrics = results["metrics"].get_dict()
    assert metrics["force_rmse"] < 0.10 * metrics["reference"]["force_component_rms"], metrics
    potential = results["potential"]
    assert potential.baseline["type"] == "zbl"
    # the input.yaml of the fit switches ACE off inside the ZBL window
    calc = training_calculation(node)
    config = calc.outputs.retrieved.base.repository.get_object_content("input.yaml")
    assert "inner_cutoff_type: distance" in config
    assert any(line.startswith("pair_style hybrid/overlay pace zbl") for line in potential.lammps_commands())


def test_real_chain_with_windows_from_the_data_is_repulsive_for_every_pair(codes):
    """physics_baseline={"type": "zbl"} on a binary alloy whose pairs have different shortest distances: the work
    chain derives a window per pair from the training part of the split, fits, and its own short-range check (under
    the default short_range_check='error') finds every pair repulsive below its data."""
    structures = alloy_emt(40, elements=("Cu", "Au"), seed=3)
    parameters = {
        "potential": {"functions": {"ALL": {"nradmax_by_orders": [6, 2], "lmax_by_orders": [0, 1]}}},
        "fit": {"maxiter": 60},
    }
    builder = fast(codes, TrainingSetData(structures).store(), parameters, test_fraction=0.2, selection=None)
    builder.physics_baseline = orm.Dict({"type": "zbl"})
    builder.short_range_check = orm.Str("error")
    results, node = run_get_node(builder)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    report = results["short_range"].get_dict()
    assert report["all_repulsive"] and set(report["pairs"]) == {"Au-Au", "Au-Cu", "Cu-Cu"}
    minima = results["training_set"].pair_min_distances()
    assert len({round(d, 2) for d in minima.values()}) == 3  # three different shortest distances, three windows
    for pair, entry in report["pairs"].items():
        assert entry["source"] == "data" and entry["data_min"] == pytest.approx(minima[pair])
        outer = entry["window"][1]
        assert outer <= minima[pair] < outer + 0.001  # at the pair's own shortest distance, never above it
        assert entry["dimer"]["rise_below_minimum"] > 10  # eV: a wall, not a bump
    assert results["potential"].baseline == results["training_set"].base.attributes.get("baseline")
    assert len(results["potential"].lammps_commands()[0].split(" zbl ")) == 4  # three zbl sub-styles
