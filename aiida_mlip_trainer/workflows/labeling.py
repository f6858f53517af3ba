"""`LabelingWorkChain`: label every structure of a pool with an oracle, skipping (and reporting) failed labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import WorkChain, while_

from ..calculations.untrusted import refuses_altered_nodes
from ..data.training_set import TrainingSetData
from ..oracles import (
    adapter_arguments,
    job_inputs,
    load_adapter,
    load_input_generator,
    load_oracle_process,
    merge_inputs,
    validate_oracle,
)
from .functions.labeling import collect_labelling_failures, merge_labels, split_pool
from .protocols import PROTOCOLS_DIRECTORY, ProtocolMixin, merge

__all__ = ("LabelingWorkChain",)


class LabelingWorkChain(ProtocolMixin, WorkChain):
    """Label the structures of a pool with an oracle (see :mod:`aiida_mlip_trainer.oracles` for the contract).

    Pass the ``pool`` (a :class:`TrainingSetData`; labels it may have are ignored), the ``oracle`` (``process``,
    ``structure_port``, ``adapter``, ``inputs``, ``options``, optional ``structure_inputs``; build it with
    :func:`~aiida_mlip_trainer.oracles.ase_oracle` or :func:`~aiida_mlip_trainer.oracles.cp2k_oracle`) and
    ``max_concurrent``, how many oracle jobs run at once (in waves: the next wave starts when the current one has
    finished). The description is data (it is stored, and may come from someone else's archive): its ``options``
    hold only scheduler requests. Job-script text for the oracle jobs (``prepend_text``, ``append_text``,
    ``custom_scheduler_commands``, other environment variables) goes into ``oracle_job_options``, a plain dict typed
    in Python and never stored, merged into every oracle job's ``metadata.options``.

    Outline: the pool is cut into ``StructureData`` nodes (a calcfunction); each structure gets its oracle job; the
    adapter (a calcfunction) turns each finished job's outputs into labels; the labels are merged into one
    ``TrainingSetData`` by a calcfunction, so that every labelled structure links back, through its labels and the
    adapter, to the job that computed them. A job that fails, or whose output the adapter refuses (SCF not
    converged, missing forces), is recorded in ``failures`` (made by the calcfunction ``collect_labelling_failures``
    from the labels and the reasons) and skipped. Outputs: ``labelled``, ``indices`` (the
    pool positions that got a label) and ``failures`` (``{"failures": [{"index", "name", "process_pk", "reason"}],
    "num_labelled", "num_failed"}``). Only when no label at all could be made does it fail (ERROR_ALL_LABELS_FAILED).
    """

    _protocol_file = PROTOCOLS_DIRECTORY / "labeling.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        oracle: Mapping[str, Any],
        pool: TrainingSetData | None = None,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        **inputs: Any,
    ):
        """A builder with ``max_concurrent`` from ``protocol`` (see ``workflows/protocols/labeling.yaml``) and the
        ``oracle`` description (from :func:`~aiida_mlip_trainer.oracles.ase_oracle` or
        :func:`~aiida_mlip_trainer.oracles.cp2k_oracle`). ``pool`` is the :class:`TrainingSetData` to label (None
        when an outer work chain supplies it); ``overrides`` is merged into the protocol key by key (e.g.
        ``{"max_concurrent": 8}``); ``options`` are merged into the oracle's ``options`` (the ``metadata.options``
        of every oracle job, stored with the description: scheduler requests only; job-script text goes into
        ``oracle_job_options``). Other keyword arguments are inputs of the work chain, set last."""
        values = cls.get_protocol_inputs(protocol, overrides)
        oracle = dict(oracle)
        if options:
            oracle["options"] = merge(oracle.get("options") or {}, options)
        values["oracle"] = merge(oracle, values.get("oracle") or {})
        if pool is not None:
            values["pool"] = pool
        return cls.builder_with(values, inputs)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("pool", valid_type=TrainingSetData, help="The structures to label (labels, if any, are ignored).")
        spec.input_namespace("oracle", help="The oracle: see aiida_mlip_trainer.oracles.")
        spec.input(
            "oracle.process",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            help="Entry point of the process: 'aiida.calculations:<name>' or 'aiida.workflows:<name>'.",
        )
        spec.input(
            "oracle.structure_port",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Str("structure"),
            help="The input port that gets the structure (dots for namespaces).",
        )
        spec.input(
            "oracle.adapter",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            help="Name of the adapter in the entry-point group mlip_trainer.oracle_adapters.",
        )
        spec.input_namespace(
            "oracle.inputs", dynamic=True, help="The fixed inputs of every oracle job (code, parameters, ...)."
        )
        spec.input(
            "oracle.options",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help="metadata.options of every oracle job (calculation oracles): scheduler requests only (resources, "
            "max_wallclock_seconds, queue_name, account, qos, max_memory_kb, withmpi, thread counts).",
        )
        spec.input(
            "oracle_job_options",
            valid_type=dict,
            non_db=True,
            required=False,
            help="metadata.options merged into every oracle job's, typed in Python and never stored: the place for "
            "job-script text (prepend_text, append_text, custom_scheduler_commands, other environment variables).",
        )
        spec.input_namespace("oracle.structure_inputs", required=False, help="Inputs made for each structure.")
        spec.input(
            "oracle.structure_inputs.generator",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            required=False,
            help="Name of the generator in the entry-point group mlip_trainer.oracle_inputs.",
        )
        spec.input(
            "oracle.structure_inputs.parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help="Parameters of the generator.",
        )
        spec.input(
            "max_concurrent",
            valid_type=orm.Int,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Int(2),
            help="How many oracle jobs run at the same time.",
        )
        spec.inputs.validator = refuses_altered_nodes(cls.validate_inputs)

        spec.outline(cls.setup, while_(cls.has_structures_left)(cls.run_oracles, cls.collect_labels), cls.results)

        spec.output("labelled", valid_type=TrainingSetData, required=False, help="The structures that got labels.")
        spec.output("indices", valid_type=orm.List, required=False, help="Their positions in the pool.")
        spec.output("failures", valid_type=orm.Dict, help="Structures without a label: which job, and why.")
        spec.exit_code(
            542,
            "ERROR_ALL_LABELS_FAILED",
            message="no structure of the pool got a label ({num_failed} failed); the first failure: {reason}",
        )

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse an oracle that cannot run, before any job: see :func:`aiida_mlip_trainer.oracles.validate_oracle`.
        The inputs are checked with the pool's first structure at the oracle's structure port; a work chain that
        exposes these inputs without the pool (``ActiveLearningWorkChain``) calls this with its own structures as
        ``pool`` instead (a one-atom stand-in would not do: aiida-quantumespresso compares the pseudopotentials with
        the structure's kinds)."""
        if "max_concurrent" in inputs and inputs["max_concurrent"].value < 1:
            return f"max_concurrent must be at least 1, got {inputs['max_concurrent'].value}"
        oracle = inputs.get("oracle")
        if oracle is None or "process" not in oracle or "adapter" not in oracle or "pool" not in inputs:
            return None
        structure_inputs = oracle.get("structure_inputs", {})
        generator = structure_inputs.get("generator")
        if structure_inputs and generator is None:
            return "oracle.structure_inputs needs a generator (an entry point of mlip_trainer.oracle_inputs)"
        return validate_oracle(
            oracle["process"].value,
            oracle["structure_port"].value if "structure_port" in oracle else "structure",
            oracle["adapter"].value,
            oracle.get("inputs", {}),
            oracle["options"].get_dict() if "options" in oracle else None,
            generator.value if generator is not None else None,
            structure_inputs["parameters"].get_dict() if "parameters" in structure_inputs else None,
            inputs.get("oracle_job_options"),
            _first_structure(inputs.get("pool")),
        )

    def setup(self):
        """Cut the pool into structures; every pool position is to be labelled, in order."""
        # Context keys are strings: the context is checkpointed as YAML.
        self.ctx.structures = {
            label.removeprefix("structure_"): node.uuid for label, node in split_pool(self.inputs.pool).items()
        }
        self.ctx.todo = sorted(self.ctx.structures, key=int)
        self.ctx.labels = {}
        self.ctx.failures = {}  # pool position -> {"process_pk", "reason"}
        self.ctx.batch = []

    def has_structures_left(self):
        return bool(self.ctx.todo)

    def run_oracles(self):
        """Start the next wave of at most ``max_concurrent`` oracle jobs."""
        oracle = self.inputs.oracle
        process_class = load_oracle_process(oracle.process.value)
        # The description's scheduler requests, then what the user typed in Python (job-script text included).
        options = merge_inputs(
            oracle.options.get_dict() if "options" in oracle else {}, self.inputs.get("oracle_job_options") or {}
        )
        generator = None
        if "generator" in oracle.get("structure_inputs", {}):
            generator = load_input_generator(oracle.structure_inputs.generator.value)
            generator_parameters = oracle.structure_inputs.get("parameters", orm.Dict())
        self.ctx.batch, self.ctx.todo = (
            self.ctx.todo[: self.inputs.max_concurrent.value],
            self.ctx.todo[self.inputs.max_concurrent.value :],
        )
        for index in self.ctx.batch:
            structure = orm.load_node(self.ctx.structures[index])
            extra = {}
            if generator is not None:
                extra = generator(structure=structure, parameters=generator_parameters)
            inputs = job_inputs(
                process_class, dict(oracle.inputs), oracle.structure_port.value, structure, options, extra
            )
            inputs.setdefault("metadata", {})["call_link_label"] = f"oracle_{index}"
            node = self.submit(process_class, **inputs)
            self.report(f"structure {index} ({structure.label!r}): oracle job <{node.pk}>")
            self.to_context(**{f"oracle_{index}": node})

    def collect_labels(self):
        """Turn each finished job of the wave into labels with the adapter; record and skip what failed."""
        adapter = load_adapter(self.inputs.oracle.adapter.value)
        for index in self.ctx.batch:
            node = self.ctx[f"oracle_{index}"]
            structure = orm.load_node(self.ctx.structures[index])
            if not node.is_finished_ok:
                state = f"exit status {node.exit_status}" if node.is_finished else node.process_state.value
                reason = f"the oracle job {state}: {node.exit_message or 'no message'}"
                self._fail(index, structure, node, reason)
                continue
            outputs = {
                link.link_label: link.node
                for link in node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all()
            }
            try:
                labels = adapter(**adapter_arguments(adapter, structure, outputs))
            except Exception as exc:  # the adapter's message says why the output is not a label; never fatal
                self._fail(index, structure, node, f"the adapter refused the output: {exc}")
                continue
            self.ctx.labels[index] = labels.uuid

    def _fail(self, index: str, structure, node, reason: str) -> None:
        self.report(f"structure {index} ({structure.label!r}), job <{node.pk}>: skipped, {reason}")
        self.ctx.failures[index] = {"process_pk": node.pk, "reason": reason}

    def results(self):
        labels = {f"labels_{index}": orm.load_node(uuid) for index, uuid in self.ctx.labels.items()}
        failed = {f"failure_{index}": orm.Dict(record) for index, record in self.ctx.failures.items()}
        self.out("failures", collect_labelling_failures(self.inputs.pool, **labels, **failed))
        if not self.ctx.labels:
            first = next(iter(self.ctx.failures.values()))["reason"] if self.ctx.failures else "nothing to label"
            return self.exit_codes.ERROR_ALL_LABELS_FAILED.format(num_failed=len(self.ctx.failures), reason=first)
        pairs = {}
        for index in self.ctx.labels:
            pairs[f"structure_{index}"] = orm.load_node(self.ctx.structures[index])
            pairs[f"labels_{index}"] = labels[f"labels_{index}"]
        merged = merge_labels(pool=self.inputs.pool, **pairs)
        self.out("labelled", merged["labelled"])
        self.out("indices", merged["indices"])
        self.report(f"{len(self.ctx.labels)} structures labelled, {len(self.ctx.failures)} skipped")
        return None


def _first_structure(pool: TrainingSetData | None) -> orm.StructureData | None:
    """The first structure of ``pool`` (not stored), on which the oracle's inputs are checked before any job."""
    if pool is None or not pool.num_structures:
        return None
    return orm.StructureData(ase=pool.to_atoms()[0])
