"""`aiida-mlip-trainer learn launch / status`: one-line errors before anything starts, and the learning curve of a
loop read from the processes it called, while it runs."""

import pytest
import yaml
from aiida import orm
from aiida.common.links import LinkType

from tests.test_cli import _one_error_line, invoke

EXPLORATION = {"temperatures": [300], "steps": 50}


@pytest.fixture
def learn_yaml(tmp_path, loop_codes, copper_sets):
    """Write a `learn launch` YAML with these changes (None removes a key); returns its path."""

    def factory(**changes):
        inputs = {
            "codes": {name: code.full_label for name, code in loop_codes.items() if name != "ase_oracle"},
            "structures": copper_sets["initial"].pk,
            "test_set": copper_sets["test"].uuid,
            "exploration": EXPLORATION,
            "oracle": {"type": "ase", "code": loop_codes["ase_oracle"].full_label, "calculator": "emt"},
            "protocol": "fast",
            "max_rounds": 2,
        }
        for key, value in changes.items():
            if value is None:
                inputs.pop(key)
            else:
                inputs[key] = value
        path = tmp_path / "learn.yaml"
        path.write_text(yaml.safe_dump(inputs))
        return path

    return factory


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"rounds": 3}, ["unknown key(s) ['rounds']", "allowed: codes"]),
        ({"exploration": None}, ["`exploration` or `exploration_protocol` is missing"]),
        ({"exploration_protocol": "titanium"}, ["no exploration protocol 'titanium'", "['copper', 'cuni', 'silicon']"]),
        ({"generators": [{"type": "slab"}]}, ["generators[0]: generator slab: give miller"]),
        ({"generators": [{"type": "substitution", "element": "Ni", "fraction": 0.1}]}, ["element Ni is not in"]),
        ({"validation_structures": 10**9}, ["10000"]),
        ({"oracle": {"type": "vasp", "code": "x"}}, ["`oracle` must be a mapping with type ase, cp2k or qe"]),
        ({"oracle": {"type": "ase", "code": "mlip-trainer-ase-oracle@localhost"}}, ["needs `calculator`"]),
        ({"exploration": {"temperatures": [300], "thermostat": "nose"}}, ["unknown exploration parameters"]),
        ({"max_rounds": 0}, ["max_rounds must be at least 1, got 0"]),
        ({"oracle": None}, ["more than one round needs an oracle"]),
        ({"physics_baseline": "zbl"}, ["`physics_baseline` must be a mapping such as {type: zbl}"]),
        ({"physics_baseline": {"type": "morse"}}, ["physics_baseline", "morse"]),
        ({"short_range_check": "sometimes"}, ["short_range_check"]),
    ],
)
def test_launch_refuses_bad_input_in_one_line(learn_yaml, changes, fragments):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    _one_error_line(invoke("learn", "launch", learn_yaml(**changes), "--run"), *fragments)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_an_exploration_protocol_by_name_or_file(learn_yaml, copper_sets, tmp_path):
    """`exploration_protocol: copper` gives the generators and the conditions; `exploration` overrides its parameters
    key by key; a user's file is read relative to the YAML file; `validation_structures` arrives as given."""
    from aiida_mlip_trainer.cli.learning_yaml import learning_builder_from_yaml
    from aiida_mlip_trainer.workflows.protocols import load_exploration_protocol

    copper = load_exploration_protocol("copper")
    builder = learning_builder_from_yaml(
        learn_yaml(
            exploration={"steps": 20}, exploration_protocol="copper", validation_structures=copper_sets["test"].uuid
        )
    )
    assert builder.generators.get_list() == copper["generators"]
    parameters = builder.exploration.parameters.get_dict()
    assert parameters == {**copper["exploration"], "steps": 20}
    assert {c["name"] for c in parameters["conditions"]} == {"nvt_ladder", "heating_ramp", "npt_pressures"}
    assert builder.validation_structures.pk == copper_sets["test"].pk

    mine = {"generators": [{"type": "rattle", "stdev": 0.1, "seed": 7}], "exploration": {"temperatures": [500]}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    builder = learning_builder_from_yaml(learn_yaml(exploration=None, exploration_protocol="mine.yaml"))
    assert builder.generators.get_list() == mine["generators"]
    assert builder.exploration.parameters.get_dict() == {"temperatures": [500]}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({**mine, "generator": []}))
    _one_error_line(
        invoke("learn", "launch", learn_yaml(exploration_protocol="mine.yaml")), "unknown key(s) ['generator']"
    )


def test_launch_refuses_structures_that_are_not_a_training_set(learn_yaml):
    other = orm.Dict({"a": 1}).store()
    _one_error_line(invoke("learn", "launch", learn_yaml(structures=other.pk)), "is a Dict, not a TrainingSetData")


def _process(cls, process_type: str, label: str, parent=None, link_label=None, state="finished"):
    node = cls(process_type=f"aiida.{process_type}")
    node.set_process_label(label)
    node.set_process_state(state)
    if state == "finished":
        node.set_exit_status(0)
    if parent is not None:
        link = LinkType.CALL_WORK if cls is orm.WorkChainNode else LinkType.CALL_CALC
        node.base.links.add_incoming(parent, link_type=link, link_label=link_label)
    return node


def _output(node, data, label, link_type=LinkType.RETURN):
    if link_type is LinkType.RETURN:  # a work chain returns stored data
        data.store()
    data.base.links.add_incoming(node, link_type=link_type, link_label=label)
    return data.store()


def test_status_of_a_running_loop(aiida_localhost, copper_sets):
    """Round 0 trained and explored; its labelling runs: one row, and what runs now."""
    loop = _process(
        orm.WorkChainNode, "workflows:mlip_trainer.active_learning", "ActiveLearningWorkChain", state="running"
    )
    loop.store()
    training = _process(orm.WorkChainNode, "workflows:mlip_trainer.training", "TrainingWorkChain", loop, "training_0")
    training.base.links.add_incoming(copper_sets["initial"], link_type=LinkType.INPUT_WORK, link_label="training_set")
    training.store()
    reference = {"force_component_rms": 412.5, "energy_per_atom_std": 21.25}
    _output(training, orm.Dict({"energy_rmse": 3.5, "force_rmse": 61.25, "reference": reference}), "metrics")
    exploration = _process(
        orm.CalcJobNode, "calculations:mlip_trainer.explore", "ExplorationCalculation", loop, "exploration_0"
    )
    exploration.computer = aiida_localhost
    exploration.store()
    summary = {"max_gamma": 7.75, "fraction_halted": 0.5, "num_candidates": 9}
    _output(exploration, orm.Dict(summary), "summary", LinkType.CREATE)
    labeling = _process(
        orm.WorkChainNode, "workflows:mlip_trainer.labeling", "LabelingWorkChain", loop, "labeling_0", state="running"
    )
    labeling.store()

    result = invoke("learn", "status", loop.pk)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"ActiveLearningWorkChain<{loop.pk}>: running"
    assert "force RMS 412.5 meV/Å, energy spread 21.25 meV/atom" in lines[1]
    assert "meV/atom" in lines[3] and "meV/Å" in lines[3]
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert rows == [["0", "0", str(copper_sets["initial"].num_structures), "3.500", "61.25", "7.75", "50%"]]
    assert f"running: labeling_0: LabelingWorkChain<{labeling.pk}>" in result.output
    assert "stopped:" not in result.output


def test_status_of_something_else_is_one_line(copper_sets):
    _one_error_line(invoke("learn", "status", copper_sets["initial"].pk), "not a WorkflowNode")
    training = _process(orm.WorkChainNode, "workflows:mlip_trainer.training", "TrainingWorkChain").store()
    _one_error_line(invoke("learn", "status", training.pk), "is a TrainingWorkChain, not an ActiveLearningWorkChain")
