"""TrainingWorkChain's `trainer` input: the gracemaker protocol builder and the checks before any job (no fit runs
here; tests/active_learning/test_loop_grace_real.py runs the chain, with a ZBL baseline, as the real loop's round 0)."""

import re
import shutil

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import GraceFSPotentialData, PacePotentialData, TrainingSetData
from aiida_mlip_trainer.formats.grace_input import validate_grace_parameters
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from tests.conftest import FIXTURES, with_submit_recorder

GRACE_FIT = FIXTURES / "grace_train_success"


@pytest.fixture
def grace_codes(installed_code):
    return {
        "gracemaker": installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train"),
        "pace_activeset": installed_code(
            "pace_activeset", shutil.which("pace_activeset"), "mlip_trainer.pace_activeset"
        ),
    }


@pytest.fixture
def copper():
    return TrainingSetData(copper_emt(6, repeat=1, strain=0.03, rattle=0.05, seed=3)).store()


def grace_potential(with_checkpoint=True):
    names = ("model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001")
    return GraceFSPotentialData(
        GRACE_FIT / "FS_model.yaml",
        checkpoint={name: GRACE_FIT / name for name in names} if with_checkpoint else None,
    )


def test_the_gracemaker_builder_fills_the_grace_fit_and_leaves_out_pacemaker_s_namespaces(grace_codes, copper):
    builder = TrainingWorkChain.get_builder_from_protocol(grace_codes, copper, "fast", trainer="gracemaker")
    assert builder.trainer.value == "gracemaker"
    assert builder.grace.code.uuid == grace_codes["gracemaker"].uuid
    assert builder.grace.parameters.get_dict() == {"cutoff": 5.0, "fit": {"maxiter": 40}}
    assert builder.grace.metadata.options.max_wallclock_seconds == 1800
    assert builder.activeset.code.uuid == grace_codes["pace_activeset"].uuid
    given = builder._inputs(prune=True)  # noqa: SLF001 - what the launch sees: the builder's empty namespaces pruned
    assert not {"training", "yace", "selection"} & set(given), given
    moderate = TrainingWorkChain.get_builder_from_protocol(
        grace_codes, copper, overrides={"grace": {"parameters": {"fit": {"maxiter": 7}}}}, trainer=orm.Str("gracemaker")
    )
    # moderate: the benchmark's medium GRACE-FS model (body order 4) and forces weighted 2048, the override merged in
    parameters = moderate.grace.parameters.get_dict()
    loss = {"energy": 16, "forces": 2048, "stress": 1000}
    assert parameters["fit"] == {"maxiter": 7, "loss": loss, "jit_compile": True}
    assert parameters["potential"]["kwargs"]["max_order"] == 3 and parameters["cutoff"] == 5.0
    assert moderate.grace.metadata.options.max_wallclock_seconds == 43200
    precise = TrainingWorkChain.get_builder_from_protocol(grace_codes, copper, "precise", trainer="gracemaker")
    assert precise.grace.parameters["potential"] == parameters["potential"]
    assert precise.grace.parameters["fit"] == {"maxiter": 1000, "loss": loss, "jit_compile": True}
    for builder in (moderate, precise):  # what the protocols give gracemaker passes its checks
        assert validate_grace_parameters(builder.grace.parameters.get_dict(), has_stress=True) is None


def test_the_pacemaker_builder_has_no_grace_fit(codes_for_pacemaker, copper):
    builder = TrainingWorkChain.get_builder_from_protocol(codes_for_pacemaker, copper, "fast")
    given = builder._inputs(prune=True)  # noqa: SLF001 - what the launch sees: the builder's empty namespaces pruned
    assert "grace" not in given and "trainer" not in given  # the default: pacemaker
    assert builder.training.pace.code.uuid == codes_for_pacemaker["pacemaker"].uuid


@pytest.fixture
def codes_for_pacemaker(pacemaker_code, pace_tool_codes):
    return {"pacemaker": pacemaker_code, **pace_tool_codes}


@pytest.mark.parametrize(
    ("trainer", "codes", "message"),
    [
        ("lammps", {}, r"trainer must be one of \['pacemaker', 'gracemaker'\], got 'lammps'"),
        ("gracemaker", {"pacemaker"}, "give a code for gracemaker, pace_activeset"),
    ],
)
def test_the_builder_refuses_an_unknown_trainer_or_missing_codes(grace_codes, copper, trainer, codes, message):
    given = {name: code for name, code in grace_codes.items() if name in codes} if codes else grace_codes
    with pytest.raises(ValueError, match=message):
        TrainingWorkChain.get_builder_from_protocol(given, copper, "fast", trainer=trainer)


def _ace_potential():
    return PacePotentialData(FIXTURES / "pace_train_success" / "output_potential.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, c: b.update(trainer="gracemaker2"), r"trainer must be one of \['pacemaker', 'gracemaker'\]"),
        (lambda b, c: b.grace.pop("code"), r"give the code of grace.code \(gracemaker\)"),
        (lambda b, c: b.yace.update(code=c["pace_activeset"]), "leave `yace` .*out"),
        (
            lambda b, c: b.selection.update(max_structures=5, pace_select={"code": c["pace_activeset"]}),
            "selection with trainer gracemaker is not supported",
        ),
        (
            lambda b, c: b.grace.update(parameters={"fit": {"maxiter": -1}}),
            "grace parameters: fit.maxiter must be a positive",
        ),
        (lambda b, c: b.grace.update(parameters={"potential": {"preset": "GRACE_2LAYER"}}), "grace parameters: "),
        (lambda b, c: b.update(previous_potential=_ace_potential()), "previous_potential is not one"),
        (lambda b, c: b.update(previous_potential=grace_potential(False)), "previous_potential is not one"),
    ],
)
def test_a_gracemaker_chain_refuses_bad_input_before_any_job(grace_codes, copper, change, message):
    builder = TrainingWorkChain.get_builder_from_protocol(grace_codes, copper, "fast", trainer="gracemaker")
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError) as error:  # the trainer port refuses a wrong name as soon as it is set
        change(builder, grace_codes)
        run_get_node(builder)
    assert re.search(message, str(error.value)), str(error.value)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, c: b.grace.update(code=c["gracemaker"]), "the `grace` namespace is gracemaker's"),
        (lambda b, c: b.update(previous_potential=grace_potential()), "fine-tune it with trainer='gracemaker'"),
        (lambda b, c: b.pop("training"), r"give the fit: training.pace"),
    ],
)
def test_a_pacemaker_chain_refuses_gracemaker_s_inputs(codes_for_pacemaker, grace_codes, copper, change, message):
    builder = TrainingWorkChain.get_builder_from_protocol(codes_for_pacemaker, copper, "fast")
    change(builder, grace_codes)
    with pytest.raises(ValueError) as error:
        run_get_node(builder)
    assert re.search(message, str(error.value)), str(error.value)


def test_the_training_yaml_takes_the_trainer(grace_codes, copper, tmp_path):
    from aiida_mlip_trainer.cli.training_yaml import TRAINING_INPUT_KEYS, training_builder_from_yaml

    assert "trainer" in TRAINING_INPUT_KEYS
    spec = {
        "trainer": "gracemaker",
        "codes": {name: code.full_label for name, code in grace_codes.items()},
        "training_set": copper.uuid,
        "protocol": "fast",
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(spec))
    builder = training_builder_from_yaml(path)
    assert builder.trainer.value == "gracemaker" and builder.grace.code.uuid == grace_codes["gracemaker"].uuid
    path.write_text(yaml.safe_dump({**spec, "trainer": "nequip"}))
    with pytest.raises(ValueError, match="trainer must be one of pacemaker, gracemaker, got 'nequip'"):
        training_builder_from_yaml(path)
    path.write_text(yaml.safe_dump({**spec, "codes": {"pacemaker": "pacemaker@localhost"}}))
    with pytest.raises(ValueError, match="`codes` must map at least `gracemaker`"):
        training_builder_from_yaml(path)


def _grace_job(exit_status: int, epochs: int | None = None, potential: bool = True) -> orm.CalcJobNode:
    """A finished GraceTrainCalculation as the chain sees it: its exit status, and the `potential` (the recorded fit,
    with its checkpoint) and `metrics` it returned."""
    from aiida.common.links import LinkType

    node = orm.CalcJobNode()
    node.set_process_label("GraceTrainCalculation")
    node.set_process_state("finished")
    node.set_exit_status(exit_status)
    outputs = {"metrics": orm.Dict({"epochs": epochs})} if epochs is not None else {}
    if potential:
        outputs["potential"] = grace_potential()
    for label, output in outputs.items():
        output.base.links.add_incoming(node, LinkType.CREATE, label)
    node.store()
    for output in outputs.values():
        output.store()
    return node


@pytest.fixture
def grace_chain(grace_codes, copper):
    """A gracemaker TrainingWorkChain instantiated and set up to its fit, its `submit` a recorder."""
    builder = TrainingWorkChain.get_builder_from_protocol(grace_codes, copper, "fast", trainer="gracemaker")
    process = with_submit_recorder(builder)
    process.setup()
    assert process.prepare_sets() is None
    return process


def test_the_gracemaker_fit_is_not_given_the_held_out_structures(grace_chain):
    # gracemaker would evaluate them at every iteration and export the checkpoint of its best loss on them: the
    # chain's validation on the same structures would then measure a model chosen on them
    process = grace_chain
    process.run_training()
    inputs = process.submitted[-1][1]
    assert "test_set" not in inputs
    assert inputs["training_set"].pk == process.ctx.train.pk

    def structures(data):
        return {atoms.get_chemical_formula() + str(atoms.positions.sum()) for atoms in data.to_atoms()}

    held_out = structures(process.ctx.test)
    assert held_out and not held_out & structures(process.ctx.train)


def test_a_gracemaker_fit_stopped_at_its_walltime_continues_from_its_checkpoint(grace_chain):
    from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation

    walltime = GraceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    process = grace_chain
    assert process.should_fit()
    process.run_training()
    assert "previous_potential" not in process.submitted[-1][1]
    left = 40  # the fast protocol's epochs
    for done in (15, 10):
        process.ctx.training = stopped = _grace_job(walltime, epochs=done)
        assert process.inspect_training() is None and process.should_fit()
        left -= done
        process.run_training()
        inputs = process.submitted[-1][1]
        assert inputs["previous_potential"].pk == stopped.outputs.potential.pk
        assert inputs["parameters"]["fit"]["maxiter"] == left  # the epochs still to do
        assert inputs["parameters"]["cutoff"] == 5.0  # the rest of the protocol's settings kept
        assert inputs["metadata"]["call_link_label"].startswith("continuation_")
    process.ctx.training = finished = _grace_job(0, epochs=left)
    assert process.inspect_training() is None and not process.should_fit()
    assert process.ctx.fitted.pk == finished.outputs.potential.pk
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(process.node))
    assert "stopped at its walltime after 15 epochs: continuing from its checkpoint for the 25 epochs left" in reports


@pytest.mark.parametrize(
    "stops",
    [
        ["ERROR_OUT_OF_WALLTIME"] * 4,  # three continuations, then the fourth stop ends the chain
        ["ERROR_KILLED_BEFORE_INTERIM"],  # no checkpoint to continue from
        ["ERROR_NAN_LOSS"],  # not a walltime: nothing to continue
    ],
    ids=["four_walltimes", "killed_before_interim", "nan"],
)
def test_a_gracemaker_fit_that_cannot_continue_ends_the_chain(grace_chain, stops):
    from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation
    from aiida_mlip_trainer.workflows.training import GRACE_CONTINUATIONS

    assert GRACE_CONTINUATIONS == 3
    process = grace_chain
    process.run_training()
    for index, label in enumerate(stops):
        status = getattr(GraceTrainCalculation.exit_codes, label).status
        walltime = label == "ERROR_OUT_OF_WALLTIME"
        process.ctx.training = _grace_job(status, epochs=5 if walltime else None, potential=walltime)
        exit_code = process.inspect_training()
        if index < len(stops) - 1:
            assert exit_code is None
            process.run_training()
    assert exit_code.status == TrainingWorkChain.exit_codes.ERROR_TRAINING_FAILED.status
    assert len(process.submitted) == len(stops)
