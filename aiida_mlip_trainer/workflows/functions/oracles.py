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
    kpoint_mesh,
    read_cp2k_output,
    usable_kpoint_distance,
)

__all__ = ("ase_oracle_labels", "cp2k_labels", "kpoints_mesh")


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
