"""Every work chain's protocol builder: its result pinned with data_regression for each protocol (as
aiida-quantumespresso tests `get_builder_from_protocol`), and what composes: the inner builders called by the outer
ones with the same protocol, `overrides` merged recursively, `options` passed down, resources in the form of the
code's scheduler."""

from __future__ import annotations

import pathlib
import re

import pytest
from aiida import orm

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from aiida_mlip_trainer.workflows.pace_train_base import PaceTrainBaseWorkChain
from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
from aiida_mlip_trainer.workflows.training import TrainingWorkChain
from tests.conftest import codes_on, computer_on_localhost

PROTOCOLS = ("fast", "moderate", "precise")
CHAINS = {
    "pace_train_base": PaceTrainBaseWorkChain,
    "selection": SelectionWorkChain,
    "labeling": LabelingWorkChain,
    "training": TrainingWorkChain,
    "active_learning": ActiveLearningWorkChain,
}
PLUGINS = {
    "pacemaker": "mlip_trainer.pace_train",
    "pace_select": "mlip_trainer.pace_select",
    "pace_activeset": "mlip_trainer.pace_activeset",
    "pace_yaml2yace": "core.shell",
    "explore": "mlip_trainer.explore",
    "ase_oracle": "mlip_trainer.ase_oracle",
}
HOWTO = pathlib.Path(__file__).resolve().parents[2] / "docs" / "howto" / "protocols.md"
EXPLORATION = {"temperatures": [300, 900], "steps": 200, "gamma_collect": 2.0, "gamma_halt": 10.0}


@pytest.fixture
def scheduler_codes(aiida_profile):
    """``scheduler_codes(scheduler)``: every code of the plugin on a computer ``<scheduler>-computer`` with that
    scheduler (never connected to: the builders read only its scheduler type), made once per profile."""

    def factory(scheduler: str = "core.direct") -> dict[str, orm.AbstractCode]:
        computer, _ = computer_on_localhost(f"{scheduler}-computer", scheduler, "/tmp/protocols")
        return codes_on(computer, {name: (f"/opt/{name}", plugin) for name, plugin in PLUGINS.items()})

    return factory


@pytest.fixture
def structures(argon_structures):
    data = TrainingSetData(argon_structures["train"])
    data.label = "argon"
    return data.store()


def serialize(value):
    """A builder's inputs as plain data: a node as its value (BaseType, Dict, List), a code as its full label, any
    other node as its type and label (no pk, no uuid: they differ from run to run)."""
    if isinstance(value, dict):
        return {key: serialize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [serialize(item) for item in value]
    if isinstance(value, orm.BaseType):
        return value.value
    if isinstance(value, orm.Dict):
        return serialize(value.get_dict())
    if isinstance(value, orm.List):
        return serialize(value.get_list())
    if isinstance(value, orm.AbstractCode):
        return f"code {value.full_label}"
    if isinstance(value, orm.Data):
        return f"{type(value).__name__} {value.label!r}"
    return value


def serialize_builder(builder) -> dict:
    return serialize(builder._inputs(prune=True))  # noqa: SLF001 - what the user would submit


def build(chain: str, codes: dict, structures, protocol=None, overrides=None, **kwargs):
    """``chain``'s builder from ``protocol`` with the arguments each takes."""
    if chain == "pace_train_base":
        return PaceTrainBaseWorkChain.get_builder_from_protocol(
            codes["pacemaker"], structures, protocol, overrides, **kwargs
        )
    if chain == "selection":
        return SelectionWorkChain.get_builder_from_protocol(codes, structures, protocol, overrides, **kwargs)
    if chain == "labeling":
        oracle = ase_oracle(codes["ase_oracle"], "emt")
        return LabelingWorkChain.get_builder_from_protocol(oracle, structures, protocol, overrides, **kwargs)
    if chain == "training":
        return TrainingWorkChain.get_builder_from_protocol(codes, structures, protocol, overrides, **kwargs)
    oracle = ase_oracle(codes["ase_oracle"], "emt")
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes, structures, EXPLORATION, protocol, overrides, oracle=oracle, **kwargs
    )


def test_every_chain_has_the_same_protocols():
    """An outer builder calls the inner ones with its own protocol name: every file must know every name."""
    for chain in CHAINS.values():
        assert tuple(chain.get_available_protocols()) == PROTOCOLS, chain
        assert chain.get_default_protocol() == "moderate", chain
        assert chain.get_protocol_filepath().is_file()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("chain", CHAINS)
def test_builder_from_protocol(chain, protocol, scheduler_codes, structures, data_regression):
    builder = build(chain, scheduler_codes("core.slurm"), structures, protocol)
    data_regression.check(serialize_builder(builder))


def test_overrides_are_merged_recursively_into_the_inner_protocols(scheduler_codes, structures):
    """An outer override reaches the inner builder's protocol key by key: what it does not name stays."""
    codes = scheduler_codes()
    builder = build(
        "active_learning",
        codes,
        structures,
        "fast",
        {
            "selection": {"max_structures": 3},
            "labeling": {"max_concurrent": 5},
            "training": {"seed": 7, "training": {"pace": {"parameters": {"fit": {"maxiter": 9}}}}},
        },
    )
    fit = builder.training.training.pace.parameters.get_dict()
    assert fit["fit"] == {
        **PaceTrainBaseWorkChain.get_protocol_inputs("fast")["pace"]["parameters"]["fit"],
        "maxiter": 9,
    }
    assert fit["potential"]["functions"]["number_of_functions_per_element"] == 40  # still the fast basis
    assert builder.training.training.max_iterations.value == 3 and builder.training.seed.value == 7
    assert builder.selection.max_structures.value == 3 and builder.selection.strategy.value == "dopt"
    assert builder.labeling.max_concurrent.value == 5
    assert "selection" not in serialize_builder(builder)["training"]  # the loop selects; its fits do not


def test_a_misspelt_override_is_refused_with_its_path(scheduler_codes, structures):
    with pytest.raises(ValueError, match=r"pace\.parameterz: not an input"):
        build("training", scheduler_codes(), structures, "fast", {"training": {"pace": {"parameterz": {}}}})


@pytest.mark.parametrize("chain", ["training", "active_learning"])
def test_options_reach_every_job_of_the_plugin(chain, scheduler_codes, structures):
    """``options`` are passed down to every inner builder and merged into the protocol's options (walltimes kept);
    the oracle jobs keep the options of the oracle description."""
    options = {"account": "materials", "queue_name": "cpu"}
    builder = build(chain, scheduler_codes(), structures, "fast", options=options)
    if chain == "active_learning":
        assert builder.exploration.metadata.options.account == "materials"
        assert builder.selection.pace_select.metadata.options.queue_name == "cpu"
        assert builder.selection.pace_activeset.metadata.options.account == "materials"
        assert "options" not in builder.labeling.oracle
        builder = builder.training
    else:
        assert builder.selection.pace_select.metadata.options.max_wallclock_seconds == 3600
        assert builder.selection.pace_activeset.metadata.options.queue_name == "cpu"
    for namespace in (builder.training.pace, builder.activeset, builder.yace):
        assert {"account": "materials", "queue_name": "cpu"}.items() <= dict(namespace.metadata.options).items()
    assert builder.training.pace.metadata.options.max_wallclock_seconds == 1800


def all_resources(value, path=()):
    """Every ``metadata.options.resources`` of a serialised builder, by its path."""
    if not isinstance(value, dict):
        return {}
    found = {path: value["resources"]} if path[-2:] == ("metadata", "options") else {}
    for key, item in value.items():
        found.update(all_resources(item, (*path, key)))
    return found


@pytest.mark.parametrize(
    ("scheduler", "resources"),
    [
        ("core.direct", {"num_machines": 1, "num_mpiprocs_per_machine": 1}),
        ("core.slurm", {"num_machines": 1, "num_mpiprocs_per_machine": 1}),
        ("core.pbspro", {"num_machines": 1, "num_mpiprocs_per_machine": 1}),
        ("core.lsf", {"tot_num_mpiprocs": 1}),
    ],
)
def test_resources_suit_the_scheduler_of_the_code(scheduler, resources, scheduler_codes, structures):
    found = all_resources(serialize_builder(build("active_learning", scheduler_codes(scheduler), structures, "fast")))
    assert {".".join(path[:-2]) for path in found} == {
        "training.training.pace",
        "training.activeset",
        "training.yace",
        "selection.pace_select",
        "selection.pace_activeset",
        "exploration",
    }
    assert all(value == resources for value in found.values()), found


@pytest.mark.parametrize("scheduler", ["core.sge"])
@pytest.mark.parametrize("chain", [chain for chain in CHAINS if chain != "labeling"])
def test_an_unknown_scheduler_is_named(chain, scheduler, scheduler_codes, structures):
    """No guess for a scheduler whose resources the plugin does not know; resources given by the user need none."""
    codes = scheduler_codes(scheduler)
    with pytest.raises(ValueError, match=f"no default resources for the scheduler '{scheduler}'"):
        build(chain, codes, structures, "fast")
    given = {"resources": {"parallel_env": "mpi", "tot_num_mpiprocs": 1}}
    found = all_resources(serialize_builder(build(chain, codes, structures, "fast", options=given)))
    assert found and all(value == given["resources"] for value in found.values())


def test_the_protocols_howto_runs_as_written(aiida_profile):
    """docs/howto/protocols.md: its Python blocks, in order, in one namespace (their asserts are the checks)."""
    blocks = re.findall(r"^```python\n(.*?)^```", HOWTO.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(HOWTO), "exec"), namespace)  # noqa: S102 - the page's own code
    assert namespace["builder"].pace.metadata.options.resources == {"tot_num_mpiprocs": 1}


def test_a_learn_launch_yaml_gives_its_overrides_to_the_builder(scheduler_codes, structures, tmp_path):
    """`learn launch`'s YAML: `protocol`, `fine_tune_maxiter` and one `overrides` key, as the builder takes them; the
    keys they replace (max_structures, max_concurrent, training_overrides) are refused as unknown."""
    import yaml

    from aiida_mlip_trainer.cli.learning_yaml import learning_builder_from_yaml

    codes = scheduler_codes()
    spec = {
        "codes": {name: code.full_label for name, code in codes.items() if name != "ase_oracle"},
        "structures": structures.uuid,
        "exploration": EXPLORATION,
        "oracle": {"type": "ase", "code": codes["ase_oracle"].full_label, "calculator": "emt"},
        "protocol": "fast",
        "fine_tune_maxiter": 25,
        "overrides": {
            "selection": {"max_structures": 4},
            "labeling": {"max_concurrent": 1},
            "training": {"training": {"max_iterations": 2}},
        },
    }
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(spec))
    builder = learning_builder_from_yaml(path)
    assert builder.selection.max_structures.value == 4 and builder.labeling.max_concurrent.value == 1
    assert builder.training.training.max_iterations.value == 2
    assert builder.max_rounds.value == 2  # the fast protocol of the loop
    assert builder.fine_tune_maxiter.value == 25  # the file's, over the protocol's
    path.write_text(yaml.safe_dump({**spec, "max_structures": 4}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['max_structures'\]"):
        learning_builder_from_yaml(path)
