"""TrainingWorkChain: input validation, and the full chain with a mocked pacemaker (the other tools are real)."""

import io
import re

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}
# The recorded potential of the mock has rcut 7 Å: the parameters match it.
OVERRIDES = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}, "fit": {"maxiter": 100}}


@pytest.fixture
def codes(mock_pacemaker_code, pace_tool_codes):
    return {"pacemaker": mock_pacemaker_code, **pace_tool_codes}


def test_full_chain_with_mocked_pacemaker(codes, argon_sets, argon_structures):
    data = TrainingSetData(argon_structures["train"] + argon_structures["test"]).store()
    results, node = run_get_node(
        TrainingWorkChain,
        training_set=data,
        test_fraction=0.25,
        max_structures=12,
        physics_baseline=LJ,
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
    )
    assert node.is_finished_ok, node.exit_message
    potential = results["potential"]
    assert potential.base.attributes.get("has_yace") and potential.has_active_set
    assert potential.baseline["type"] == "lj"
    assert set(potential.base.repository.list_object_names()) == {"potential.yaml", "potential.yace", "potential.asi"}
    assert "pair_style hybrid/overlay pace lj/smooth/linear" in potential.lammps_commands()[0]

    # selection ran (16 training structures > 12), in rounds: one pace_select call returns fewer than 12 here
    summary = results["selection_summary"].get_dict()
    assert results["training_set"].num_structures == 12
    assert summary["requested"] == 12 and summary["returned"] == 12 and len(summary["rounds"]) >= 2
    assert summary["rounds"][0]["returned"] < 12
    assert results["test_set"].num_structures == 6  # 25 % of 22, original labels
    assert results["test_set"].base.attributes.get("baseline", None) is None
    assert results["training_set"].base.attributes.get("baseline")["type"] == "lj"

    metrics = results["metrics"].get_dict()
    for key in ("energy_rmse", "force_rmse", "stress_rmse"):
        assert metrics[key] >= 0
    # the LJ wall keeps ACE + LJ repulsive below the data: checked by the work chain itself, on what was fitted
    short_range = results["short_range"].get_dict()
    assert short_range["all_repulsive"] and short_range["pairs"]["Ar-Ar"]["source"] == "data"
    check = results["short_range"].creator
    assert check.process_label == "check_short_range" and check.inputs.training_set.pk == results["training_set"].pk
    assert results["short_range_plot"].get_content(mode="rb")[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["reference"]["force_component_rms"] > 0
    assert results["parity_plot"].get_content(mode="rb")[:8] == b"\x89PNG\r\n\x1a\n"
    # the exact configuration is a node, created by a calcfunction from the preset and the overrides
    assert results["parameters"]["fit"]["maxiter"] == 100
    assert results["parameters"].creator.process_label == "generate_training_parameters"

    # lineage: from the potential back to the data the user gave
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={"id": data.pk}, tag="data")
    query.append(orm.ProcessNode, with_incoming="data", tag="p0")
    query.append(PacePotentialData, filters={"id": potential.pk}, with_ancestors="data")
    assert query.count() >= 1


def test_selection_in_chunks(codes, argon_sets):
    """selection_chunk_size=6 on 16 structures: chunks of 6, 6 and 4, one pace_select job each, then rounds over
    their picks; the summary says so, and the chunks are subsets of the training data in the graph."""
    results, node = run_get_node(
        TrainingWorkChain,
        training_set=argon_sets["train"],
        test_set=argon_sets["test"],
        max_structures=8,
        selection_chunk_size=6,
        short_range_check="warning",  # a direct fit (see test_direct_fit_not_repulsive_exits_440)
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
    )
    assert node.is_finished_ok, node.exit_message
    summary = results["selection_summary"].get_dict()
    chunking = summary["chunking"]
    assert chunking["chunk_size"] == 6 and chunking["chunks"] == 3 and 8 <= chunking["candidates"] <= 16
    assert summary["returned"] == results["training_set"].num_structures == 8
    selections = [child for child in node.called if child.process_label == "PaceSelectCalculation"]
    assert len(selections) == 3 + len(summary["rounds"])
    pools = [child.inputs.pool.num_structures for child in sorted(selections, key=lambda n: n.pk)]
    assert pools[:3] == [6, 6, 4] and pools[3] == chunking["candidates"]


def test_structures_file_is_imported_by_a_calcfunction(codes, argon_structures, tmp_path):
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, argon_structures["train"], format="extxyz")
    file = orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename="argon.extxyz")
    results, node = run_get_node(
        TrainingWorkChain,
        structures_file=file,
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
        short_range_check="warning",
    )
    assert node.is_finished_ok, node.exit_message
    imported = [n for n in node.called_descendants if n.process_label == "import_training_set"]
    assert len(imported) == 1 and imported[0].outputs.result.num_structures == 16


def test_direct_fit_not_repulsive_below_its_data_exits_440_with_every_output(codes, argon_sets):
    """The recorded argon potential, a direct fit, attracts in the dimer between about 1.3 and 2.1 Å (its data start
    at 3.2 Å): exit code 440, and every output is still there to inspect."""
    results, node = run_get_node(
        TrainingWorkChain,
        training_set=argon_sets["train"],
        test_set=argon_sets["test"],
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
    )
    assert node.exit_status == TrainingWorkChain.exit_codes.ERROR_SHORT_RANGE_NOT_REPULSIVE.status == 440
    assert "not repulsive below the shortest training distance of Ar-Ar" in node.exit_message
    assert {"potential", "metrics", "parity_plot", "short_range", "short_range_plot", "training_set"} <= set(results)
    report = results["short_range"].get_dict()
    assert not report["all_repulsive"] and report["not_repulsive"] == ["Ar-Ar"]
    dimer = report["pairs"]["Ar-Ar"]["dimer"]
    (start, end), *_ = dimer["not_rising"]
    assert 1.0 < start < end < report["pairs"]["Ar-Ar"]["data_min"] and dimer["well_depth"] > 0.01
    curves = results["short_range"].creator.outputs.curves
    assert set(curves.get_arraynames()) == {"dimer_Ar_Ar", "fcc_Ar"}

    # downgraded to a warning: the same verdict, exit 0
    results, node = run_get_node(
        TrainingWorkChain,
        training_set=argon_sets["train"],
        test_set=argon_sets["test"],
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
        short_range_check="warning",
    )
    assert node.is_finished_ok and results["short_range"]["not_repulsive"] == ["Ar-Ar"]


def test_zbl_windows_are_derived_from_the_training_data(codes, argon_sets):
    """physics_baseline={"type": "zbl"}: a calcfunction derives the Ar-Ar window from the training structures; the
    residual set, the input.yaml of the fit and the potential all carry the derived, explicit numbers."""
    results, node = run_get_node(
        TrainingWorkChain,
        training_set=argon_sets["train"],
        test_set=argon_sets["test"],
        physics_baseline={"type": "zbl"},
        preset="fast",
        parameter_overrides=OVERRIDES,
        codes=codes,
        short_range_check="warning",  # the mock returns a direct fit whatever it is given
    )
    assert node.is_finished_ok, node.exit_message
    (derive,) = [n for n in node.called if n.process_label == "derive_baseline"]
    assert derive.inputs.training_set.pk == argon_sets["train"].pk
    d_min = argon_sets["train"].pair_min_distances()["Ar-Ar"]
    outer = float(np.floor(d_min * 1000) / 1000)
    expected = {"type": "zbl", "params": {"Ar-Ar": {"inner_cutoff": round(0.75 * outer, 3), "cutoff": outer}}}
    assert derive.outputs.result.get_dict() == expected
    assert results["potential"].baseline == expected
    assert results["training_set"].base.attributes.get("baseline") == expected
    (calc,) = [n for n in node.called_descendants if n.process_label == "PaceTrainCalculation"]
    config = yaml.safe_load(calc.outputs.retrieved.base.repository.get_object_content("input.yaml"))
    assert config["potential"]["bonds"]["Ar Ar"]["r_in"] == outer
    assert results["short_range"]["pairs"]["Ar-Ar"]["window"] == [round(0.75 * outer, 3), outer]


def _copper_set():
    return TrainingSetData(copper_emt(4, seed=1)).store()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.update(preset="turbo"), "unknown preset 'turbo'"),
        (lambda i: i.update(physics_baseline={"type": "morse", "params": {}}), "physics_baseline: .*known types"),
        (
            lambda i: i.update(physics_baseline={"type": "lj", "params": {"epsilon": 0.1, "sigma": -1, "cutoff": 5}}),
            "physics_baseline: .*sigma",
        ),
        (lambda i: i.update(max_structures=0), "max_structures must be a positive integer"),
        (lambda i: i.update(test_fraction=1.5), r"test_fraction must be in \(0, 1\)"),
        (lambda i: i.update(test_fraction=0.0), r"test_fraction must be in \(0, 1\)"),
        (
            lambda i: i.update(training_set=_copper_set(), previous_potential=PacePotentialData(POTENTIAL)),
            r"contain \['Cu'\], which the previous_potential .* lacks",
        ),
        (
            lambda i: i.update(previous_potential=PacePotentialData(POTENTIAL), physics_baseline=LJ),
            "fine-tuning must keep the baseline",
        ),
        (lambda i: i.update(training_set=TrainingSetData(i["training_set"].to_atoms(), labelled=False)), "no labels"),
        (
            lambda i: i.update(structures_file=orm.SinglefileData(io.BytesIO(b""), filename="x.extxyz")),
            "exactly one of",
        ),
        (lambda i: i.update(parameter_overrides={"fit": {"maxiter": -3}}), "fit.maxiter must be a positive"),
        (
            lambda i: (
                i.pop("training_set")
                and i.update(structures_file=orm.SinglefileData(io.BytesIO(b"\n"), filename="e.xyz"))
            ),
            "structures_file 'e.xyz' is empty",
        ),
        (lambda i: i.update(training_set=TrainingSetData(i["training_set"].to_atoms()[:1])), "one structure cannot"),
        (lambda i: i["codes"].pop("pace_select") and i.update(max_structures=5), "needs codes.pace_select"),
        (lambda i: i.update(selection_chunk_size=5), "selection_chunk_size is for selection: give max_structures"),
        (lambda i: i.update(max_structures=5, selection_chunk_size=0), "selection_chunk_size must be a positive"),
        (lambda i: i.update(short_range_check="maybe"), r"short_range_check must be one of \['error', 'warning'\]"),
        (
            lambda i: i.update(previous_potential=PacePotentialData(POTENTIAL), physics_baseline={"type": "zbl"}),
            "give physics_baseline=previous_potential.baseline",
        ),
        (
            lambda i: i.update(physics_baseline={"type": "zbl", "params": {"Ar": {"cutoff": 3.0}}}),
            "physics_baseline: .*key 'Ar' is not .* write 'Ar-Ar'",
        ),
    ],
)
def test_bad_input_is_refused_before_any_job(codes, argon_sets, change, message):
    inputs = {"training_set": argon_sets["train"], "preset": "fast", "codes": dict(codes)}
    change(inputs)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError) as error:
        run_get_node(TrainingWorkChain, **inputs)
    assert re.search(message, str(error.value)), str(error.value)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before
