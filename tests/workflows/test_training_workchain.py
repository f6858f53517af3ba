"""TrainingWorkChain: protocols, input validation, and the full chain with a mocked pacemaker (the other tools are
real)."""

import io
import re

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from aiida_shell import ShellJob

from aiida_mlip_trainer.calculations import PaceActivesetCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain, TrainingWorkChain
from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}
# The recorded potential of the mock has rcut 7 Å: the parameters match it.
PARAMETERS = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}, "fit": {"maxiter": 100}}
OVERRIDES = {"training": {"pace": {"parameters": PARAMETERS}}}


@pytest.fixture
def codes(mock_pacemaker_code, pace_tool_codes):
    return {"pacemaker": mock_pacemaker_code, **pace_tool_codes}


def errors_computed_here(potential, test_set, baseline_weight=1.0):
    """Energy (meV/atom) and force (meV/Å per component) RMSE of ACE + ``baseline_weight`` x baseline against the
    labels of ``test_set``, computed here with pyace's calculator on the potential's ``.yace`` (whose ``E0`` carries the
    reference energy the fit subtracted, as LAMMPS reads it) and the baseline's ASE calculator: independent of how the
    work chain's validation combines them."""
    import pathlib
    import tempfile

    from pyace import PyACECalculator

    from aiida_mlip_trainer.physics.baselines import baseline_calculator

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "potential.yace"
        path.write_bytes(potential.read_file("potential.yace"))
        ace = PyACECalculator(str(path))
    baseline = baseline_calculator(potential.baseline)
    energy_errors, force_errors = [], []
    for reference in test_set.to_atoms():
        energy, forces = reference.get_potential_energy(), reference.get_forces()
        predicted_energy, predicted_forces = 0.0, 0.0
        for calculator, weight in ((ace, 1.0), (baseline, baseline_weight)):
            atoms = reference.copy()
            atoms.calc = calculator
            predicted_energy = predicted_energy + weight * atoms.get_potential_energy()
            predicted_forces = predicted_forces + weight * atoms.get_forces()
        energy_errors.append((predicted_energy - energy) / len(reference))
        force_errors.append((predicted_forces - forces).ravel())
    return (
        1000 * float(np.sqrt(np.mean(np.square(energy_errors)))),
        1000 * float(np.sqrt(np.mean(np.square(np.concatenate(force_errors))))),
    )


def builder_for(codes, structures, short_range_check="warning", **overrides):
    """The fast protocol with the mock's rcut, plus ``overrides`` merged in. The recorded fits are direct fits, not
    repulsive below their data: the short-range check only warns unless a test is about it."""
    from aiida_mlip_trainer.workflows.protocols import merge

    builder = TrainingWorkChain.get_builder_from_protocol(codes, structures, "fast", merge(OVERRIDES, overrides))
    builder.short_range_check = orm.Str(short_range_check)
    return builder


def test_protocols_fill_every_namespace_and_scale_with_the_elements(codes, argon_sets):
    assert set(TrainingWorkChain.get_available_protocols()) == {"fast", "moderate", "precise"}
    assert TrainingWorkChain.get_default_protocol() == "moderate"
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes, argon_sets["train"], "fast", options={"account": "materials", "max_wallclock_seconds": 900}
    )
    parameters = builder.training.pace.parameters.get_dict()
    assert parameters["potential"]["functions"]["number_of_functions_per_element"] == 40
    assert parameters["fit"]["maxiter"] == 100 and builder.training.max_iterations.value == 3
    assert builder.selection.max_structures.value == 200 and builder.selection.strategy.value == "dopt"
    # `options` reach every job of the chain
    for options in (
        builder.training.pace.metadata.options,
        builder.activeset.metadata.options,
        builder.yace.metadata.options,
        builder.selection.pace_select.metadata.options,
        builder.selection.pace_activeset.metadata.options,
    ):
        assert options["account"] == "materials" and options["max_wallclock_seconds"] == 900
    moderate = TrainingWorkChain.get_builder_from_protocol(codes, argon_sets["train"])
    assert moderate.training.pace.parameters["potential"]["functions"]["number_of_functions_per_element"] == 300
    precise = TrainingWorkChain.get_builder_from_protocol(codes, argon_sets["train"], "precise")
    assert "max_structures" not in precise.selection  # no selection in the precise protocol
    none = TrainingWorkChain.get_builder_from_protocol(codes, argon_sets["train"], "fast", {"selection": None})
    assert "max_structures" not in none.selection
    with pytest.raises(ValueError, match="unknown protocol 'turbo'"):
        TrainingWorkChain.get_builder_from_protocol(codes, argon_sets["train"], "turbo")


def test_number_of_functions_per_element_caps_the_basis_for_five_elements(small_parameters):
    """The protocols' per-element budget: without it the fast basis has 1170 functions per element for five."""
    from aiida_mlip_trainer.formats.basis import unfitted_basis_layout

    fast = PaceTrainBaseWorkChain.get_protocol_inputs("fast")["pace"]["parameters"]
    elements = ["Co", "Cr", "Fe", "Mn", "Ni"]
    layout = unfitted_basis_layout(fast, elements)
    assert set(layout) == set(elements) and all(30 <= spec["num_functions"] <= 40 for spec in layout.values())
    assert unfitted_basis_layout(fast, ["Cu"])["Cu"]["num_functions"] == 36


def test_full_chain_with_mocked_pacemaker(codes, argon_structures):
    data = TrainingSetData(argon_structures["train"] + argon_structures["test"]).store()
    builder = builder_for(codes, data, "error", test_fraction=0.25, selection={"max_structures": 12})
    builder.physics_baseline = orm.Dict(LJ)
    builder.selection.pace_select.metadata.options.max_wallclock_seconds = 777
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    potential = results["potential"]
    assert potential.base.attributes.get("has_yace") and potential.has_active_set
    assert potential.baseline["type"] == "lj"
    assert set(potential.base.repository.list_object_names()) == {"potential.yaml", "potential.yace", "potential.asi"}
    assert "pair_style hybrid/overlay pace lj/smooth/linear" in potential.lammps_commands()[0]

    # selection ran as one child work chain (16 training structures > 12), in rounds
    (selection,) = [child for child in node.called if child.process_label == "SelectionWorkChain"]
    summary = results["selection_summary"].get_dict()
    assert summary == selection.outputs.summary.get_dict()
    assert results["training_set"].num_structures == summary["returned"] and summary["requested"] == 12
    # one pace_select call returns fewer than 12 here; a second round (over the active set of the first picks)
    # finds nothing that extends them, and the summary says so
    assert summary["rounds"][0]["returned"] < 12
    assert summary["returned"] == 12 or "round 2: no structure left in the pool extends" in summary["shortfall"]
    assert [n.process_label for n in selection.called].count("PaceActivesetCalculation") == 1
    select_jobs = [n for n in selection.called if n.process_label == "PaceSelectCalculation"]
    assert select_jobs and all(job.get_option("max_wallclock_seconds") == 777 for job in select_jobs)
    assert results["test_set"].num_structures == 6  # 25 % of 22, original labels
    assert results["test_set"].base.attributes.get("baseline", None) is None
    assert results["training_set"].base.attributes.get("baseline")["type"] == "lj"

    metrics = results["metrics"].get_dict()
    # the validation is of ACE + LJ, the baseline added back once, on the held-out original labels
    energy_rmse, force_rmse = errors_computed_here(potential, results["test_set"])
    assert metrics["energy_rmse"] == pytest.approx(energy_rmse, rel=1e-6)
    assert metrics["force_rmse"] == pytest.approx(force_rmse, rel=1e-6)
    # the replayed fit is of the residual labels, so the errors are far below the spread of the data (measured:
    # 0.20 meV/atom, 1.1 meV/Å against 2.3 and 53); LJ counted twice or not at all gives about 35 meV/atom, 25 meV/Å;
    # the reference energy the fit subtracted (about 30 meV/atom here) left out would show in the energies
    assert metrics["energy_rmse"] < 0.5 * metrics["reference"]["energy_per_atom_std"]
    assert metrics["force_rmse"] < 0.1 * metrics["reference"]["force_component_rms"]
    twice = errors_computed_here(potential, results["test_set"], baseline_weight=2.0)
    assert twice[0] > 10 * metrics["energy_rmse"] and twice[1] > 10 * metrics["force_rmse"]
    # the LJ wall keeps ACE + LJ repulsive below the data: checked by the work chain itself, on what was fitted
    short_range = results["short_range"].get_dict()
    assert short_range["all_repulsive"] and short_range["pairs"]["Ar-Ar"]["source"] == "data"
    check = results["short_range"].creator
    assert check.process_label == "check_short_range" and check.inputs.training_set.pk == results["training_set"].pk
    assert results["short_range_plot"].get_content(mode="rb")[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["reference"]["force_component_rms"] > 0
    assert results["parity_plot"].get_content(mode="rb")[:8] == b"\x89PNG\r\n\x1a\n"
    # the exact configuration is an input node of the chain, filled by the protocol
    assert results["parameters"]["fit"]["maxiter"] == 100
    assert results["parameters"].pk == node.inputs.training.pace.parameters.pk

    # lineage: from the potential back to the data the user gave
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={"id": data.pk}, tag="data")
    query.append(PacePotentialData, filters={"id": potential.pk}, with_ancestors="data")
    assert query.count() >= 1


def test_selection_in_layers_and_chunks_through_the_selection_namespace(codes, argon_sets):
    """Every input of the selection namespace reaches SelectionWorkChain: layers, chunks of the pool, the budget."""
    selection = {"max_structures": 8, "chunk_size": 6, "rounds": "layers", "max_rounds": 5}
    builder = builder_for(codes, argon_sets["train"], selection=selection)
    builder.test_set = argon_sets["test"]
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (child,) = [n for n in node.called if isinstance(n, orm.WorkChainNode) and n.process_label == "SelectionWorkChain"]
    assert child.inputs.chunk_size.value == 6 and child.inputs.rounds.value == "layers"
    summary = results["selection_summary"].get_dict()
    assert summary["chunking"]["chunks"] == 3 and summary["returned"] == results["training_set"].num_structures == 8
    # the parameters of the fit are the input node, used as given
    assert results["parameters"].pk == node.inputs.training.pace.parameters.pk


def test_structures_file_is_imported_by_a_calcfunction(codes, argon_structures):
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, argon_structures["train"], format="extxyz")
    file = orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename="argon.extxyz")
    results, node = run_get_node(builder_for(codes, file, selection=None))
    assert node.is_finished_ok, node.exit_message
    imported = [n for n in node.called_descendants if n.process_label == "import_training_set"]
    assert len(imported) == 1 and imported[0].outputs.result.num_structures == 16


def test_an_unreadable_structures_file_fails_cleanly_before_any_job(codes):
    file = orm.SinglefileData(io.BytesIO(b"this is not\nan extxyz file\n"), filename="broken.extxyz")
    results, node = run_get_node(builder_for(codes, file, selection=None))
    assert node.is_failed and node.exit_status == TrainingWorkChain.exit_codes.ERROR_INVALID_STRUCTURES.status
    assert "broken.extxyz" in node.exit_message and "cannot be read" in node.exit_message
    (imported,) = node.called
    assert imported.is_failed and not imported.is_excepted  # recorded, with the reason
    assert not [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]


def test_too_few_atoms_for_the_active_set_after_selection_stop_before_the_fit(codes, argon_sets):
    """The active set needs one environment per function and element: 36 functions, and a selection of one argon
    cell (32 atoms) gives only 32. Said before the fit, with an exit code."""
    builder = builder_for(codes, argon_sets["train"], selection={"max_structures": 1})
    builder.test_set = argon_sets["test"]
    _, node = run_get_node(builder)
    assert node.exit_status == TrainingWorkChain.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.status, node.exit_message
    assert "selected training set has 32 Ar atoms but the potential has 36 basis functions" in node.exit_message
    assert not [n for n in node.called_descendants if n.process_label == "PaceTrainCalculation"]


def test_direct_fit_not_repulsive_below_its_data_exits_with_every_output(codes, argon_sets):
    """The recorded argon fit (real pacemaker, no baseline) has a dip of about 7 meV in the dimer from about 1.4 Å
    (its data start at 3.2 Å): ERROR_SHORT_RANGE_NOT_REPULSIVE, and every output is still there to inspect."""
    builder = builder_for(codes, argon_sets["train"], "error", selection=None)
    builder.test_set = argon_sets["test"]
    results, node = run_get_node(builder)
    assert node.exit_status == TrainingWorkChain.exit_codes.ERROR_SHORT_RANGE_NOT_REPULSIVE.status
    assert "not repulsive below the shortest training distance of Ar-Ar" in node.exit_message
    assert {"potential", "metrics", "parity_plot", "short_range", "short_range_plot", "training_set"} <= set(results)
    report = results["short_range"].get_dict()
    assert not report["all_repulsive"] and report["not_repulsive"] == ["Ar-Ar"]
    dimer = report["pairs"]["Ar-Ar"]["dimer"]
    (start, end), *_ = dimer["not_rising"]
    assert 1.0 < start < end < report["pairs"]["Ar-Ar"]["data_min"] and dimer["well_depth"] > 0.005
    curves = results["short_range"].creator.outputs.curves
    assert set(curves.get_arraynames()) == {"dimer_Ar_Ar", "fcc_Ar"}

    # downgraded to a warning: the same verdict, exit 0
    builder.short_range_check = orm.Str("warning")
    results, node = run_get_node(builder)
    assert node.is_finished_ok and results["short_range"]["not_repulsive"] == ["Ar-Ar"]


def test_zbl_windows_are_derived_from_the_training_data(codes, argon_sets):
    """physics_baseline={"type": "zbl"}: a calcfunction derives the Ar-Ar window from the training structures; the
    residual set, the input.yaml of the fit and the potential all carry the derived, explicit numbers."""
    builder = builder_for(codes, argon_sets["train"], selection=None)  # the check warns: the mock fit is direct
    builder.test_set = argon_sets["test"]
    builder.physics_baseline = orm.Dict({"type": "zbl"})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (derive,) = [n for n in node.called if n.process_label == "derive_baseline"]
    assert derive.inputs.training_set.pk == argon_sets["train"].pk
    d_min = argon_sets["train"].pair_min_distances()["Ar-Ar"]
    outer = float(np.floor(d_min * 1000) / 1000)
    expected = {"type": "zbl", "params": {"Ar-Ar": {"inner_cutoff": round(0.75 * outer, 3), "cutoff": outer}}}
    assert derive.outputs.result.get_dict() == expected
    assert results["baseline"].pk == derive.outputs.result.pk  # the node the loop passes on to fine-tuning
    assert results["potential"].baseline == expected
    assert results["training_set"].base.attributes.get("baseline") == expected
    (calc,) = [n for n in node.called_descendants if n.process_label == "PaceTrainCalculation"]
    config = yaml.safe_load(calc.outputs.retrieved.base.repository.get_object_content("input.yaml"))
    assert config["potential"]["bonds"]["Ar Ar"]["r_in"] == outer
    assert results["short_range"]["pairs"]["Ar-Ar"]["window"] == [round(0.75 * outer, 3), outer]


def test_the_baseline_output_is_the_one_subtracted(codes, argon_sets):
    """``baseline``: the output of derive_baseline when windows were left to the data, else the input itself; none
    without a physics_baseline."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager

    builder = builder_for(codes, argon_sets["train"], selection=None)
    builder.test_set = argon_sets["test"]
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    assert process.prepare_sets() is None and "baseline" not in process.outputs
    for baseline, derived in ((orm.Dict({"type": "zbl"}), True), (orm.Dict(LJ), False)):
        builder.physics_baseline = baseline
        process = instantiate_process(get_manager().get_runner(), builder)
        process.setup()
        assert process.prepare_sets() is None
        output = process.outputs["baseline"]
        assert process.ctx.train.base.attributes.get("baseline") == output.get_dict()
        if derived:
            assert output.creator.process_label == "derive_baseline" and "Ar-Ar" in output["params"]
        else:
            assert output.pk == baseline.pk


def _copper_set():
    return TrainingSetData(copper_emt(4, seed=1)).store()


def _unset(namespace, key):
    namespace.pop(key, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b.training.pace.pop("parameters"),
            "'inputs.training.pace.parameters': required value was not provided",
        ),
        (lambda b: b.yace.pop("code"), "'inputs.yace.code': required value was not provided"),
        (lambda b: b.activeset.pop("code"), "give the code of activeset.code"),
        (lambda b: b.update(physics_baseline={"type": "morse", "params": {}}), "physics_baseline: .*known types"),
        (
            lambda b: b.update(physics_baseline={"type": "lj", "params": {"epsilon": 0.1, "sigma": -1, "cutoff": 5}}),
            "physics_baseline: .*sigma",
        ),
        (lambda b: b.selection.update(max_structures=0), "max_structures must be a positive integer"),
        (lambda b: b.update(test_fraction=1.5), r"test_fraction must be in \(0, 1\)"),
        (lambda b: b.update(test_fraction=0.0), r"test_fraction must be in \(0, 1\)"),
        (
            lambda b: b.update(training_set=_copper_set(), previous_potential=PacePotentialData(POTENTIAL)),
            r"have the elements \['Cu'\] but the previous_potential has \['Ar'\]",
        ),
        (
            lambda b: b.update(previous_potential=PacePotentialData(POTENTIAL), physics_baseline=LJ),
            "fine-tuning must keep the baseline",
        ),
        (lambda b: b.update(test_set=_copper_set()), r"the test_set contains \['Cu'\], which the training data"),
        (lambda b: b.update(training_set=TrainingSetData(b.training_set.to_atoms(), labelled=False)), "no labels"),
        (
            lambda b: b.update(structures_file=orm.SinglefileData(io.BytesIO(b""), filename="x.extxyz")),
            "exactly one of",
        ),
        (
            lambda b: b.training.pace.update(
                parameters=orm.Dict({**b.training.pace.parameters.get_dict(), "fit": {"maxiter": -3}})
            ),
            "fit.maxiter must be a positive",
        ),
        (
            lambda b: (
                b.pop("training_set")
                and b.update(structures_file=orm.SinglefileData(io.BytesIO(b"\n"), filename="e.xyz"))
            ),
            "the structures_file is empty",
        ),
        (lambda b: b.update(training_set=TrainingSetData(b.training_set.to_atoms()[:1])), "one structure cannot"),
        (lambda b: b.selection.pace_select.pop("code"), r"give pace_select.code \(the pace_select code\)"),
        (lambda b: _unset(b.selection, "max_structures"), "give the budget: max_structures and/or max_atoms"),
        (lambda b: b.training.pace.pop("code"), "give the code of training.pace.code"),
        (
            lambda b: b.update(training_set=TrainingSetData(b.training_set.to_atoms()[:1]), test_set=b.training_set),
            r"training data has 32 Ar atoms but the potential has 36 basis functions",
        ),
        (lambda b: b.update(short_range_check="maybe"), r"short_range_check must be one of \['error', 'warning'\]"),
        (
            lambda b: b.update(previous_potential=PacePotentialData(POTENTIAL), physics_baseline={"type": "zbl"}),
            "give physics_baseline=previous_potential.baseline",
        ),
        (
            lambda b: b.update(physics_baseline={"type": "zbl", "params": {"Ar": {"cutoff": 3.0}}}),
            "physics_baseline: .*key 'Ar' is not .* write 'Ar-Ar'",
        ),
    ],
)
def test_bad_input_is_refused_before_any_job(codes, argon_sets, change, message):
    builder = builder_for(codes, argon_sets["train"])
    change(builder)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError) as error:
        run_get_node(builder)
    assert re.search(message, str(error.value)), str(error.value)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_selection_namespace_is_the_selection_work_chain(codes, argon_sets):
    """Every input of SelectionWorkChain but the pool and the selector is settable from the top."""
    exposed = set(TrainingWorkChain.spec().inputs["selection"])
    own = set(SelectionWorkChain.spec().inputs) - {"pool", "potential", "parameters", "covered", "metadata"}
    assert own <= exposed


def test_too_few_atoms_in_an_imported_file_stop_before_any_job(codes, argon_structures):
    """From a file the atoms can only be counted after the import: two argon cells, one held out, leave 32 Ar atoms
    for 36 functions; an exit code says so before any job (and no child is left behind)."""
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, argon_structures["train"][:2], format="extxyz")
    file = orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename="two.extxyz")
    _, node = run_get_node(builder_for(codes, file, selection=None, test_fraction=0.5))
    assert node.exit_status == TrainingWorkChain.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.status, node.exit_message
    assert "training data has 32 Ar atoms but the potential has 36 basis functions" in node.exit_message
    assert not [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert all(n.is_finished_ok for n in node.called_descendants)


def test_train_runs_the_protocol_builder_here_and_returns_the_outputs(codes, argon_sets, argon_structures):
    """launch.train: the fast protocol with the mock's rcut, plain values for the work chain's own inputs."""
    from ase.io import write

    from aiida_mlip_trainer.launch import TrainingError, train
    from aiida_mlip_trainer.workflows.protocols import merge

    overrides = merge(OVERRIDES, {"selection": None})
    results = train(
        argon_sets["train"], codes, "fast", overrides, test_set=argon_sets["test"], short_range_check="warning"
    )
    node = results["potential"].base.links.get_incoming(link_type=LinkType.RETURN).one().node
    assert node.process_label == "TrainingWorkChain" and node.is_finished_ok
    assert node.inputs.training_set.pk == argon_sets["train"].pk and node.inputs.test_set.pk == argon_sets["test"].pk
    assert node.inputs.short_range_check.value == "warning"
    assert node.inputs.training.pace.parameters["fit"]["maxiter"] == 100  # the fast protocol, overridden rcut
    assert node.inputs.training.pace.parameters["potential"]["bonds"]["ALL"]["rcut"] == 7.0
    assert set(results) == set(node.outputs) and results["potential"].has_active_set

    # a failure is raised with its exit status, and the node to inspect
    buffer = io.StringIO()
    write(buffer, argon_structures["train"][:2], format="extxyz")
    file = orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename="two.extxyz")
    too_few = TrainingWorkChain.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.status
    with pytest.raises(TrainingError, match=rf"failed \[{too_few}\]: .*32 Ar atoms but the potential has 36") as error:
        train(file, codes, "fast", merge(overrides, {"test_fraction": 0.5}))
    assert error.value.node.exit_status == TrainingWorkChain.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.status


def _finished(exit_status: int, message: str | None = None) -> orm.WorkChainNode:
    node = orm.WorkChainNode()
    node.set_process_state("finished")
    node.set_exit_status(exit_status)
    node.set_exit_message(message)
    return node.store()


@pytest.mark.parametrize(
    ("step", "label", "child_code", "expected"),
    [
        (
            "selection",
            "ERROR_SELECTION_FAILED",
            SelectionWorkChain.exit_codes.ERROR_NOTHING_SELECTED,
            "the structure selection failed: [{}] nothing was selected",
        ),
        (
            "training",
            "ERROR_TRAINING_FAILED",
            PaceTrainBaseWorkChain.exit_codes.ERROR_FIT_UNSTABLE,
            "the training failed: [{}] the loss stayed NaN",
        ),
        (
            "yace",
            "ERROR_FINALISATION_FAILED",
            ShellJob.exit_codes.ERROR_OUTPUT_FILEPATHS_MISSING,
            "the pace_yaml2yace step failed: [{}] no potential.yace",
        ),
        (
            "activeset",
            "ERROR_FINALISATION_FAILED",
            PaceActivesetCalculation.exit_codes.ERROR_MAXVOL_UNDERDETERMINED,
            "the pace_activeset step failed: [{}] MaxVol was under-determined",
        ),
    ],
)
def test_a_failed_child_stops_the_chain_with_its_status_and_message(
    codes, argon_sets, step, label, child_code, expected
):
    """The inspect step after each child ends the chain with that child's exit code and passes the child's exit
    status and message on."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager

    builder = builder_for(codes, argon_sets["train"])
    builder.test_set = argon_sets["test"]
    process = instantiate_process(get_manager().get_runner(), builder)
    expected = expected.format(child_code.status)
    child = _finished(child_code.status, expected.split("] ")[1])
    if step == "selection":
        process.ctx.selection = child
        exit_code = process.inspect_selection()
    elif step == "training":
        process.ctx.training = child
        exit_code = process.inspect_training()
    else:
        process.ctx.yace, process.ctx.activeset = _finished(0), _finished(0)
        setattr(process.ctx, step, child)
        exit_code = process.inspect_finalisation()
    assert exit_code.status == TrainingWorkChain.exit_codes[label].status
    assert exit_code.message == expected
    assert exit_code.message == expected


def test_a_singular_active_set_leaves_the_potential_without_one(codes, argon_sets):
    """pace_activeset ran but its matrix for an element is singular (302: too few distinct environments of that
    element for the basis, as a molecule's few kinds of carbon): the sound fit is still assembled, without an active
    set, and the chain says so; any other failure of pace_activeset stops the chain (the test above)."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager

    from aiida_mlip_trainer.calculations import PaceActivesetCalculation

    builder = builder_for(codes, argon_sets["train"])
    builder.test_set = argon_sets["test"]
    process = instantiate_process(get_manager().get_runner(), builder)
    process.ctx.fitted = PacePotentialData(POTENTIAL).store()
    yace_job = orm.CalcJobNode(process_type="aiida.calculations:core.shell")
    yace_job.set_process_state("finished")
    yace_job.set_exit_status(0)
    yace_job.store()
    yace = orm.SinglefileData(io.BytesIO(b"elements: [Ar]\n"), filename="potential.yace")
    yace.base.links.add_incoming(yace_job, LinkType.CREATE, "potential_yace")
    yace.store()
    process.ctx.yace = yace_job
    status = PaceActivesetCalculation.exit_codes.ERROR_INVALID_ACTIVE_SET.status
    process.ctx.activeset = _finished(status, "element 'C': the matrix is singular")
    assert process.inspect_finalisation() is None
    potential = process.ctx.potential
    assert potential.base.attributes.get("has_yace") and not potential.has_active_set
    reports = [log.message for log in orm.Log.collection.get_logs_for(process.node)]
    assert any("no active set, so no extrapolation grade" in report and "singular" in report for report in reports)


@pytest.mark.parametrize(
    ("baseline", "detail"),
    [({"type": "nonsense"}, "physics_baseline: "), ({"type": "lj", "params": {"sigma": -1.0}}, "physics_baseline: ")],
)
def test_train_refuses_a_bad_baseline_with_a_training_error(codes, argon_sets, baseline, detail):
    """launch.train with a baseline the work chain refuses: TrainingError (as README promises), one line, before any
    job; no node to inspect."""
    from aiida_mlip_trainer.launch import TrainingError, train

    jobs = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(TrainingError) as error:
        train(argon_sets["train"], codes, "fast", physics_baseline=baseline)
    message = str(error.value)
    assert detail in message and "\n" not in message, message
    assert error.value.node is None, message
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == jobs
