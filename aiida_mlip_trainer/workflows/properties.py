"""`PropertyWorkChain`: materials properties of a potential next to its oracle's, in the graph."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_

from ..calculations.properties import PropertyCalculation
from ..calculations.untrusted import refuses_altered_nodes
from ..data.training_set import TrainingSetData
from .functions.properties import property_table
from .labeling import LabelingWorkChain

__all__ = ("ASE_ORACLE_PROCESS", "PropertyWorkChain")

ASE_ORACLE_PROCESS = "aiida.calculations:mlip_trainer.ase_oracle"


def _validate_inputs(inputs, _):
    """The oracle checked on the crystal (the labeling namespace has no pool to check it on), and
    ``oracle_relaxation`` only with an oracle that is an ASE calculator (its own relaxation runs as a property job)."""
    labeling = inputs.get("labeling", {})
    structure = inputs.get("job", {}).get("structure")
    if "oracle" in labeling and structure is not None:
        pool = TrainingSetData([structure.get_ase()], labelled=False)
        message = LabelingWorkChain.validate_inputs({**labeling, "pool": pool}, None)
        if message:
            return f"labeling: {message}"
    if "oracle_relaxation" in inputs and inputs["oracle_relaxation"].value:
        oracle = labeling.get("oracle", {})
        process = oracle.get("process")
        if process is None or process.value != ASE_ORACLE_PROCESS:
            return (
                "oracle_relaxation runs the oracle's own relaxation as a property job: it needs the ASE oracle "
                "(aiida_mlip_trainer.oracles.ase_oracle); a DFT oracle gives single points on the potential's "
                "geometries only"
            )
    return None


class PropertyWorkChain(WorkChain):
    """Materials properties of a potential (or of an ASE calculator) and, with an oracle, the same properties from
    the oracle on the same geometries: a table of values, reference values and relative errors, and its plot.

    Inputs: ``job`` (the :class:`~aiida_mlip_trainer.calculations.properties.PropertyCalculation`: ``code``,
    ``structure``, ``parameters`` with the properties, and ``potential`` or an ASE ``calculator``), optionally
    ``labeling`` (LabelingWorkChain's inputs but the pool: any oracle of the plugin; it labels every geometry of the
    property job with single points) and ``oracle_relaxation`` (with the ASE oracle: a second property job with the
    oracle's calculator, which relaxes everything itself; its values are the table's ``reference_relaxed``).

    Outputs: ``properties`` (the potential's), ``geometries`` (where they were computed), ``table`` (Dict: rows of
    property, unit, potential, reference, relative error; the MD check) and ``plot`` (PNG); with an oracle also
    ``labelled`` (the oracle's labels of the geometries). Oracle calls: one per geometry (about 25 with the defaults
    for eos, elastic, vacancy, two surfaces and phonons of fcc).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PropertyCalculation, namespace="job", namespace_options={"help": "The property job."})
        spec.expose_inputs(
            LabelingWorkChain,
            namespace="labeling",
            exclude=("pool",),
            namespace_options={"required": False, "populate_defaults": False, "help": "The oracle (reference)."},
        )
        spec.input(
            "oracle_relaxation",
            valid_type=orm.Bool,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Bool(False),
            help="With the ASE oracle: also the oracle's own relaxation (a second property job).",
        )
        spec.inputs.validator = refuses_altered_nodes(_validate_inputs)
        spec.outline(
            cls.run_job,
            cls.inspect_job,
            if_(cls.has_reference)(cls.run_reference, cls.inspect_reference),
            cls.results,
        )
        spec.output("properties", valid_type=orm.Dict, help="The potential's properties.")
        spec.output("geometries", valid_type=TrainingSetData, help="The geometries the properties were computed on.")
        spec.output("table", valid_type=orm.Dict, help="Values, reference values and relative errors.")
        spec.output("plot", valid_type=orm.SinglefileData, help="The equations of state and relative errors (PNG).")
        spec.output(
            "labelled",
            valid_type=TrainingSetData,
            required=False,
            help="The oracle's labels of the geometries.",
        )
        spec.exit_code(560, "ERROR_PROPERTIES_FAILED", message="the property job failed: {message}")
        spec.exit_code(561, "ERROR_REFERENCE_FAILED", message="the reference could not be computed: {message}")

    def run_job(self):
        inputs = AttributeDict(self.exposed_inputs(PropertyCalculation, namespace="job"))
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": "properties"}
        node = self.submit(PropertyCalculation, **inputs)
        self.report(f"property job <{node.pk}>")
        return ToContext(job=node)

    def inspect_job(self):
        node = self.ctx.job
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_PROPERTIES_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        self.out("properties", node.outputs.properties)
        self.out("geometries", node.outputs.geometries)
        return None

    def has_reference(self):
        return "labeling" in self.inputs and "oracle" in self.inputs.labeling

    def run_reference(self):
        """The oracle's single points on every geometry and, when asked, its own relaxation, side by side."""
        inputs = AttributeDict(self.exposed_inputs(LabelingWorkChain, namespace="labeling"))
        inputs.pool = self.ctx.job.outputs.geometries
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": "labeling"}
        running = {"labeling": self.submit(LabelingWorkChain, **inputs)}
        if self.inputs.oracle_relaxation.value:
            oracle = self.inputs.labeling.oracle.inputs
            job = AttributeDict(self.exposed_inputs(PropertyCalculation, namespace="job"))
            job.pop("potential", None)
            job.calculator = oracle["calculator"]
            if "parameters" in oracle:
                job.calculator_parameters = oracle["parameters"]
            job.metadata = {**job.get("metadata", {}), "call_link_label": "oracle_relaxation"}
            running["relaxation"] = self.submit(PropertyCalculation, **job)
        self.report("reference: " + ", ".join(f"{key} <{node.pk}>" for key, node in running.items()))
        return ToContext(**running)

    def inspect_reference(self):
        labeling = self.ctx.labeling
        if not labeling.is_finished_ok:
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(
                message=f"labelling [{labeling.exit_status}] {labeling.exit_message}"
            )
        relaxation = self.ctx.get("relaxation")
        if relaxation is not None and not relaxation.is_finished_ok:
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(
                message=f"the oracle's relaxation [{relaxation.exit_status}] {relaxation.exit_message}"
            )
        failures = labeling.outputs.failures.get_dict()
        if failures["num_failed"]:
            self.report(f"{failures['num_failed']} geometries got no label: their properties have no reference")
        self.out("labelled", labeling.outputs.labelled)
        return None

    def results(self):
        job = self.ctx.job
        arguments = {"properties": job.outputs.properties, "plan": job.outputs.plan}
        if "labeling" in self.ctx:
            arguments.update(
                geometries=job.outputs.geometries,
                labelled=self.ctx.labeling.outputs.labelled,
                indices=self.ctx.labeling.outputs.indices,
            )
        if "relaxation" in self.ctx:
            arguments["relaxed"] = self.ctx.relaxation.outputs.properties
        result = property_table(**arguments, metadata={"call_link_label": "property_table"})
        self.out("table", result["table"])
        self.out("plot", result["plot"])
        for row in result["table"]["rows"]:
            error = row.get("reference_relative_error", row.get("reference_relaxed_relative_error"))
            if error is not None:
                self.report(
                    f"{row['property']}: {row['potential']:.4g} {row['unit']} (reference "
                    f"{row.get('reference', row.get('reference_relaxed')):.4g}, {100 * error:+.2f} %)"
                )
        return None
