"""TrainingWorkChain's `trainer` input: the gracemaker protocol builder and the checks before any job (no fit runs
here; tests/integration/test_training_workchain_grace_real.py runs the chain with the real gracemaker)."""

import re
import shutil

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import GraceFSPotentialData, PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from tests.conftest import FIXTURES

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
    assert moderate.grace.parameters.get_dict() == {"cutoff": 5.0, "fit": {"maxiter": 7}}
    assert moderate.grace.metadata.options.max_wallclock_seconds == 43200


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


def test_the_active_learning_loop_trains_with_pacemaker_only():
    """Its rounds' TrainingWorkChain: no trainer to choose yet (issue 22 item 3 names it)."""
    exposed = ActiveLearningWorkChain.spec().inputs["training"]
    assert "trainer" not in exposed and "grace" not in exposed and "training" in exposed
