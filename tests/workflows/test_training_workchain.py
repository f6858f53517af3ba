"""TrainingWorkChain: input validation, and the full chain with a mocked pacemaker (the other tools are real)."""

import io
import re

import pytest
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
        TrainingWorkChain, structures_file=file, preset="fast", parameter_overrides=OVERRIDES, codes=codes
    )
    assert node.is_finished_ok, node.exit_message
    imported = [n for n in node.called_descendants if n.process_label == "import_training_set"]
    assert len(imported) == 1 and imported[0].outputs.result.num_structures == 16


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
