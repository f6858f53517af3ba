"""Calcfunctions of the oracles: adapters (a finished oracle process's outputs -> labels) and per-structure input
generators, registered as entry points of ``mlip_trainer.oracle_adapters`` and ``mlip_trainer.oracle_inputs``
(the contract: :mod:`aiida_mlip_trainer.oracles`)."""

from __future__ import annotations

from collections.abc import Mapping

from aiida import orm
from aiida.engine import calcfunction

from ...data.labels import LabelError, labels_array, read_labels
from ...formats.cp2k import (
    CP2K_DEFAULTS,
    MIN_KPOINT_DISTANCE,
    Cp2kOutputError,
    cp2k_settings,
    kpoint_mesh,
    read_cp2k_output,
    usable_kpoint_distance,
)
from ...formats.quantumespresso import PwOutputError, kpoint_spacing, pw_settings, read_pw_labels

__all__ = ("ase_oracle_labels", "cp2k_labels", "kpoints_mesh", "pw_labels")


# ------------------------------------------------------------------------------------------------------- adapters
@calcfunction
def ase_oracle_labels(structure: orm.StructureData, labels: orm.ArrayData) -> orm.ArrayData:
    """Adapter of :class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation`: its ``labels``,
    checked against the structure."""
    energy, forces, stress = read_labels(labels)
    return labels_array(energy, forces, stress, natoms=len(structure.sites))


@calcfunction
def cp2k_labels(structure: orm.StructureData, retrieved: orm.FolderData) -> orm.ArrayData:
    """Adapter of aiida-cp2k's ``Cp2kCalculation`` (``RUN_TYPE ENERGY_FORCE`` with the forces printed, and the stress
    tensor for periodic cells): energy, forces and stress read from CP2K's main output by
    :func:`~aiida_mlip_trainer.formats.cp2k.read_cp2k_output`. aiida-cp2k's own parsers give the energy only, and
    CP2K 2023 finishes with exit status 0 after an SCF that did not converge (a warning): here that is a failed
    label."""
    # The output file's name is an option of the calculation that retrieved it (aiida-cp2k's default: aiida.out).
    creator = retrieved.creator
    filename = creator.get_option("output_filename") if creator is not None else None
    filename = filename or "aiida.out"
    try:
        text = retrieved.base.repository.get_object_content(filename, mode="r")
    except FileNotFoundError as exc:
        raise LabelError(f"the retrieved files have no {filename}") from exc
    try:
        result = read_cp2k_output(text, natoms=len(structure.sites))
    except Cp2kOutputError as exc:
        raise LabelError(f"CP2K: {exc}") from exc
    stress = result["stress"] if all(structure.pbc) else None
    return labels_array(result["energy"], result["forces"], stress, natoms=len(structure.sites))


@calcfunction
def pw_labels(
    structure: orm.StructureData, output_parameters: orm.Dict, output_trajectory: orm.ArrayData | None = None
) -> orm.ArrayData:
    """Adapter of aiida-quantumespresso's ``PwCalculation`` and ``PwBaseWorkChain`` (a single point with
    ``tprnfor`` and, for periodic cells, ``tstress``): the energy of ``output_parameters`` and the forces and stress
    of ``output_trajectory``'s last step, in eV, eV/Å and eV/Å³ with ASE's stress sign
    (:func:`~aiida_mlip_trainer.formats.quantumespresso.read_pw_labels`). An SCF that did not converge ends the
    calculation with an error exit status (``scf_must_converge``, the default), so it never reaches here."""
    names = output_trajectory.get_arraynames() if output_trajectory is not None else []
    try:
        result = read_pw_labels(
            output_parameters.get_dict(),
            output_trajectory.get_array("forces") if "forces" in names else None,
            output_trajectory.get_array("stress") if "stress" in names and all(structure.pbc) else None,
            natoms=len(structure.sites),
        )
    except PwOutputError as exc:
        raise LabelError(f"pw.x: {exc}") from exc
    return labels_array(result["energy"], result["forces"], result["stress"], natoms=len(structure.sites))


# ------------------------------------------------------------------------------- the settings of a finished job
# An adapter names the processes whose outputs it reads (entry point -> the input port of the labelled structure) and
# how to read the settings that must agree across a training set; the import from the database
# (aiida_mlip_trainer.workflows.database_import) finds the adapter of a process by these.
def _kpoint_spacing(kpoints: orm.KpointsData | None, structure: orm.StructureData) -> float | None:
    """The k-point spacing (1/Å) of a mesh input; None for Γ only (no mesh input, or 1×1×1)."""
    if kpoints is None:
        return None
    try:
        mesh, _ = kpoints.get_kpoints_mesh()
    except AttributeError:  # an explicit list of k-points: compared by its count
        return None
    if list(mesh) == [1, 1, 1]:
        return None
    return kpoint_spacing(structure.cell, structure.pbc, mesh)


def _labelling_calculation(process: orm.ProcessNode, output: str) -> orm.ProcessNode:
    """The calculation that made ``output`` of ``process`` (itself, or the last calculation of a work chain)."""
    creator = process.outputs[output].creator
    return creator if creator is not None else process


def pw_settings_record(process: orm.ProcessNode) -> dict:
    """The settings of a finished ``PwCalculation`` or ``PwBaseWorkChain``: functional, pseudopotentials (their md5),
    cutoffs, smearing and spin (:func:`~aiida_mlip_trainer.formats.quantumespresso.pw_settings`), and its k-point
    spacing."""
    calculation = _labelling_calculation(process, "output_parameters")
    pseudos = {kind: f"{node.filename} md5 {node.md5}" for kind, node in calculation.inputs.pseudos.items()}
    settings = pw_settings(calculation.inputs.parameters.get_dict(), pseudos)
    functional = process.outputs.output_parameters.get("dft_exchange_correlation")
    if functional:
        settings["functional"] = str(functional)
    kpoints = calculation.inputs.kpoints if "kpoints" in calculation.inputs else None
    return {"settings": settings, "kpoint_spacing": _kpoint_spacing(kpoints, calculation.inputs.structure)}


def cp2k_settings_record(process: orm.ProcessNode) -> dict:
    """The settings of a finished ``Cp2kCalculation``: functional, basis set and pseudopotential of every kind,
    cutoffs, smearing and spin (:func:`~aiida_mlip_trainer.formats.cp2k.cp2k_settings`), and its k-point spacing."""
    calculation = _labelling_calculation(process, "retrieved")
    settings = cp2k_settings(calculation.inputs.parameters.get_dict())
    kpoints = calculation.inputs.kpoints if "kpoints" in calculation.inputs else None
    return {"settings": settings, "kpoint_spacing": _kpoint_spacing(kpoints, calculation.inputs.structure)}


def ase_oracle_settings_record(process: orm.ProcessNode) -> dict:
    """The settings of a finished ``AseOracleCalculation``: the calculator and its parameters."""
    parameters = process.inputs.parameters.get_dict() if "parameters" in process.inputs else {}
    return {"settings": {"code": "ase", "calculator": process.inputs.calculator.value, **parameters}}


pw_labels.processes = {
    "aiida.calculations:quantumespresso.pw": "structure",
    "aiida.workflows:quantumespresso.pw.base": "pw.structure",
}
pw_labels.settings_record = pw_settings_record
cp2k_labels.processes = {"aiida.calculations:cp2k": "structure"}
cp2k_labels.settings_record = cp2k_settings_record
ase_oracle_labels.processes = {"aiida.calculations:mlip_trainer.ase_oracle": "structure"}
ase_oracle_labels.settings_record = ase_oracle_settings_record


# ------------------------------------------------------------------------------------------- structure inputs
@calcfunction
def kpoints_mesh(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """Per-structure input generator: a Monkhorst-Pack mesh with ``distance`` (1/Å, 2π included; default 0.3)
    between k-points for this cell, returned under ``port`` (default ``kpoints``). A 1×1×1 mesh returns nothing:
    the calculation then runs at Γ alone, which for CP2K is the cheaper Γ-point code."""
    settings = parameters.get_dict()
    distance = settings.get("distance", CP2K_DEFAULTS["kpoint_distance"])
    mesh = kpoint_mesh(structure.cell, structure.pbc, distance)
    if mesh == [1, 1, 1]:
        return {}
    kpoints = orm.KpointsData()
    kpoints.set_cell_from_structure(structure)
    kpoints.set_kpoints_mesh(mesh)
    return {settings.get("port", "kpoints"): kpoints}


def _check_kpoints_parameters(parameters: Mapping) -> str | None:
    """None when the parameters of :func:`kpoints_mesh` are usable, else what to change."""
    unknown = sorted(set(parameters) - {"distance", "port"})
    if unknown:
        return f"unknown kpoints_mesh parameter(s) {unknown}; allowed: distance, port"
    distance = parameters.get("distance", CP2K_DEFAULTS["kpoint_distance"])
    if not usable_kpoint_distance(distance):
        return (
            f"kpoints_mesh distance must be a number of at least {MIN_KPOINT_DISTANCE} 1/Å (default 0.3), "
            f"got {distance!r}"
        )
    return None


# What validate_oracle needs to know of a generator before any job: the port it fills by default, the type of node
# it returns there, and a check of its parameters.
kpoints_mesh.default_port = "kpoints"
kpoints_mesh.output_type = orm.KpointsData
kpoints_mesh.check_parameters = _check_kpoints_parameters
