"""`TrainingSetData`: labelled (or unlabelled) atomic structures, stored without pickles.

The content lives in the node's repository as one ``.npz`` archive of plain numeric and string arrays, read back
with ``allow_pickle=False``: loading a node from someone else's AiiDA archive can never execute code. pacemaker's
pandas ``pckl.gzip`` is produced only when a calculation prepares its input folder (:meth:`write_pacemaker_pickle`).

Units: positions and cell in Å, energies in eV (total energy of the structure), forces in eV/Å, stress in eV/Å³
in Voigt order (xx, yy, zz, yz, xz, xy), the ASE conventions.

What is refused at construction, naming the structure (thresholds are keywords of the constructor):

- structures pacemaker cannot read: no atoms, an atomic number that is not an element, NaN or inf anywhere, a
  structure name with a line break (it would break every line-based format), **mixed periodicity** such as a slab
  with pbc ``(True, True, False)`` (pacemaker's neighbour lists take fully periodic or non-periodic cells only: pad
  the slab with vacuum and make it fully periodic), a periodic cell that is flat or degenerate;
- two atoms closer than ``min_distance`` (default 0.1 Å, periodic images included): a duplicated atom or a unit
  error, which would otherwise end as a NaN loss that names no structure;
- labels beyond physical bounds: ``|E|/atom`` above ``max_energy_per_atom`` (default 1e7 eV, an order of magnitude
  above the all-electron total energy of the heaviest atoms) or a force above ``max_force`` (default 1e5 eV/Å,
  several times the screened nuclear repulsion of two tungsten atoms 0.5 Å apart): a unit error, e.g. energies in
  meV.

A stored node is untrusted when it is loaded again (it may come from an archive): :meth:`TrainingSetData.get_arrays`
re-checks the arrays' names, dtypes and shapes, finite values, names and periodicity, and compares them with the
``content_hash`` attribute, before anything is read from them.
"""

from __future__ import annotations

import io
import os
import pathlib
import zipfile
from collections.abc import Iterable

import numpy as np
from aiida import orm

from ..formats.pacemaker_dataset import (
    dataframe_from_arrays,
    read_pacemaker_pickle,
    structures_from_dataframe,
    write_pacemaker_pickle,
)
from ..names import UnsafeNameError, check_element_symbols
from ..physics.training_arrays import (
    DEFAULT_CHECKS,
    TrainingSetError,
    array_summary,
    arrays_from_atoms,
    atoms_from_arrays,
    checked_thresholds,
    content_hash,
    per_element_shift,
    validate_arrays,
)

__all__ = ("TrainingSetData", "TrainingSetError")

ARRAYS_FILENAME = "training_set.npz"
# The other energy column of an imported pacemaker dataset (energy or energy_corrected), kept next to the arrays.
OTHER_ENERGIES_FILENAME = "other_energies.npz"
FORMAT_VERSION = 1


class TrainingSetData(orm.Data):
    """Atomic structures with DFT labels (energy, forces, optional stress), or an unlabelled pool of candidates.

    Build it from a list of :class:`ase.Atoms` (labels from their calculators, else from ``info``/``arrays``),
    with :meth:`from_file` (anything :func:`ase.io.read` reads: extxyz, ASE db, ...) or, for files you trust,
    :meth:`from_pacemaker_pickle`. Queryable attributes: ``num_structures``, ``num_atoms``, ``elements``,
    ``labelled``, ``has_stress``, ``energy_per_atom_min``/``max``/``std`` (eV/atom), ``force_component_rms``
    and ``force_norm_max`` (eV/Å), ``content_hash`` and ``checks`` (the thresholds it was checked with).

    What is refused, and the thresholds, are in the module docstring: ``min_distance`` (Å, default 0.1; None or 0
    skips the check), ``max_energy_per_atom`` (eV, default 1e7) and ``max_force`` (eV/Å, default 1e5) are keywords
    for the rare data that need other bounds. A set derived from this one (a subset, a residual) should be built
    with the same thresholds: ``TrainingSetData(arrays=..., **parent.checks)``.
    """

    def __init__(
        self,
        structures: Iterable | None = None,
        *,
        labelled: bool = True,
        energy_key: str = "energy",
        forces_key: str = "forces",
        stress_key: str = "stress",
        arrays: dict[str, np.ndarray] | None = None,
        min_distance: float | None = DEFAULT_CHECKS["min_distance"],
        max_energy_per_atom: float = DEFAULT_CHECKS["max_energy_per_atom"],
        max_force: float = DEFAULT_CHECKS["max_force"],
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (structures is None) == (arrays is None):
            raise TypeError("give either `structures` (a list of ase.Atoms) or `arrays`")
        checks = checked_thresholds(
            min_distance=min_distance, max_energy_per_atom=max_energy_per_atom, max_force=max_force
        )
        if arrays is None:
            arrays = arrays_from_atoms(
                structures, labelled=labelled, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key
            )
        self._set_arrays(arrays, checks)

    # ----------------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_file(cls, path: str | os.PathLike, *, index: str | int = ":", format: str | None = None, **kwargs):
        """Read every structure of a file ASE can read (extxyz, ASE database, VASP OUTCAR, ...)."""
        from ase.io import read

        structures = read(str(path), index=index, format=format)
        if not isinstance(structures, list):
            structures = [structures]
        return cls(structures, **kwargs)

    @classmethod
    def from_pacemaker_pickle(cls, path: str | os.PathLike, *, trusted: bool = False, labelled: bool = True, **kwargs):
        """Import an existing pacemaker dataset (pandas ``pckl.gzip``).

        Unpickling runs whatever code the file contains, so this needs ``trusted=True``: only import files you
        made yourself or got from people you trust. Which energy column is used, and what happens to the other
        columns, is described in :meth:`from_dataframe`.
        """
        if not trusted:
            raise TrainingSetError(
                f"{path}: a pickle can execute arbitrary code when loaded; pass trusted=True only for files you trust"
            )
        frame = read_pacemaker_pickle(path)
        return cls.from_dataframe(frame, labelled=labelled, **kwargs)

    @classmethod
    def from_dataframe(cls, frame, *, labelled: bool = True, energy_column: str | None = None, **kwargs):
        """Build from a DataFrame with pacemaker's columns (``ase_atoms``, ``energy_corrected`` and/or ``energy``,
        ``forces``, optional ``stress`` and ``name``).

        The fitted energy is ``energy_column``: by default ``energy_corrected`` when present (what pacemaker fits),
        else ``energy``. Nothing is dropped silently: the node records ``energy_column``; when the frame has both
        columns the other one is kept in the repository (:meth:`get_other_energies`) and summarised in the
        ``other_energy`` attribute (its column name and, when the difference is a sum of per-element constants as
        for pacemaker's reference energies, those constants in eV per atom); every other column that is not kept
        is listed in ``dropped_columns`` (and logged as a warning).
        """
        import logging

        read = structures_from_dataframe(frame, labelled=labelled, energy_column=energy_column)
        node = cls(read["structures"], labelled=labelled, **kwargs)
        attributes: dict = {}
        if labelled:
            attributes["energy_column"] = read["energy_column"]
        if read["other_energy"] is not None:
            column, values = read["other_energy"]
            node._set_other_energies(column, values)
            arrays = node.get_arrays()
            attributes["other_energy"] = {
                "column": column,
                "per_element_shift": per_element_shift(arrays, values - arrays["energy"]),
            }
        if read["dropped_columns"]:
            attributes["dropped_columns"] = read["dropped_columns"]
            logging.getLogger(__name__).warning(
                "from_dataframe: columns not kept on the node: %s", read["dropped_columns"]
            )
        node.base.attributes.set_many(attributes)
        return node

    # ---------------------------------------------------------------------------------------------------- storage
    def _set_arrays(self, arrays: dict[str, np.ndarray], checks: dict[str, float | None]) -> None:
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        validate_arrays(arrays, **checks)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, ARRAYS_FILENAME)
        self._cached_arrays = arrays
        attributes = {
            "format_version": FORMAT_VERSION,
            "filename": ARRAYS_FILENAME,
            **array_summary(arrays),
            "content_hash": content_hash(arrays),
            "checks": checks,
        }
        if "energy" in arrays:
            natoms = arrays["natoms"]
            per_atom = arrays["energy"] / natoms
            forces = arrays["forces"]
            attributes.update(
                energy_per_atom_min=float(per_atom.min()),
                energy_per_atom_max=float(per_atom.max()),
                energy_per_atom_std=float(per_atom.std()),
                force_component_rms=float(np.sqrt(np.mean(forces**2))),
                force_norm_max=float(np.linalg.norm(forces, axis=1).max()),
            )
        self.base.attributes.set_many(attributes)

    def _set_other_energies(self, column: str, values: np.ndarray) -> None:
        if values.shape != (self.num_structures,) or not np.isfinite(values).all():
            raise TrainingSetError(f"the {column!r} column must hold one finite energy per structure")
        buffer = io.BytesIO()
        np.savez(buffer, **{column: values})
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, OTHER_ENERGIES_FILENAME)

    def get_other_energies(self) -> dict[str, np.ndarray]:
        """The energy column of an imported pacemaker dataset that was not fitted (``energy`` when
        ``energy_corrected`` was used, or the reverse), total energies in eV; ``{}`` when there was none."""
        if OTHER_ENERGIES_FILENAME not in self.base.repository.list_object_names():
            return {}
        content = self.base.repository.get_object_content(OTHER_ENERGIES_FILENAME, mode="rb")
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                values = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise TrainingSetError(f"{self._where()}: {OTHER_ENERGIES_FILENAME} cannot be read: {error}") from None
        if any(v.dtype.kind != "f" or v.shape != (self.num_structures,) for v in values.values()):
            raise TrainingSetError(f"{self._where()}: {OTHER_ENERGIES_FILENAME} holds something else than energies")
        return values

    def get_arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays (``natoms``, ``numbers``, ``positions``, ``cell``, ``pbc``, ``names``, and when
        labelled ``energy``, ``forces``, optionally ``stress``).

        A stored node is untrusted (it may come from someone else's archive): its ``.npz`` is read without pickle
        support, and its arrays are checked again (names, dtypes, shapes, finite values, structure names,
        periodicity, label bounds) and compared with the ``content_hash`` and summary attributes before they are
        returned; a mismatch raises :class:`TrainingSetError` naming the node."""
        cached = getattr(self, "_cached_arrays", None)
        if cached is None:
            cached = self._load_arrays()
            self._cached_arrays = cached
        return cached

    def _where(self) -> str:
        return f"TrainingSetData<{self.pk}> ({self.uuid})" if self.is_stored else "an unstored TrainingSetData"

    def verify(self) -> TrainingSetData:
        """Check what reaches other programs (element symbols, the baseline, the arrays against the content hash)
        and return the node; :class:`TrainingSetError` naming the node when it is corrupt or was altered."""
        from ..physics.baselines import BaselineError, validate_baseline

        self.elements  # noqa: B018 - reading it is the check
        baseline = self.base.attributes.get("baseline", None)
        if baseline is not None:
            try:
                validate_baseline(baseline)
            except BaselineError as error:
                raise TrainingSetError(f"{self._where()} attribute 'baseline': {error}") from None
        self.get_arrays()
        return self

    def _load_arrays(self) -> dict[str, np.ndarray]:
        where = self._where()
        tampered = "the node is corrupt or was altered (e.g. in an archive): do not use it"
        try:
            content = self.base.repository.get_object_content(ARRAYS_FILENAME, mode="rb")
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:  # object arrays raise ValueError without pickle
            raise TrainingSetError(f"{where}: {ARRAYS_FILENAME} cannot be read safely ({error}); {tampered}") from None
        stored = self.base.attributes.all
        checks = {**DEFAULT_CHECKS, **(stored.get("checks") or {}), "min_distance": None}  # the hash covers geometry
        try:
            validate_arrays(arrays, **checked_thresholds(**checks))
        except (TrainingSetError, TypeError, ValueError) as error:
            raise TrainingSetError(f"{where}: {error}; {tampered}") from None
        if content_hash(arrays) != stored.get("content_hash"):
            raise TrainingSetError(f"{where}: its arrays do not match its content_hash attribute; {tampered}")
        summary = array_summary(arrays)
        differs = sorted(key for key, value in summary.items() if stored.get(key) != value)
        if differs:
            raise TrainingSetError(f"{where}: attribute(s) {differs} do not match its arrays; {tampered}")
        return arrays

    # ----------------------------------------------------------------------------------------------- attributes
    @property
    def num_structures(self) -> int:
        return self.base.attributes.get("num_structures")

    @property
    def num_atoms(self) -> int:
        return self.base.attributes.get("num_atoms")

    @property
    def elements(self) -> list[str]:
        """The chemical symbols of the set, sorted; checked to be symbols (they reach pacemaker's input.yaml)."""
        try:
            return check_element_symbols(self.base.attributes.get("elements"), f"{self._where()} attribute 'elements'")
        except UnsafeNameError as error:
            raise TrainingSetError(f"{error}: the node is corrupt or was altered; do not use it") from None

    @property
    def checks(self) -> dict[str, float | None]:
        """The thresholds this set was checked with (``min_distance``, ``max_energy_per_atom``, ``max_force``), to
        build a derived set with the same ones: ``TrainingSetData(arrays=..., **parent.checks)``."""
        return checked_thresholds(**{**DEFAULT_CHECKS, **(self.base.attributes.get("checks", None) or {})})

    @property
    def labelled(self) -> bool:
        return self.base.attributes.get("labelled")

    @property
    def has_stress(self) -> bool:
        return self.base.attributes.get("has_stress")

    @property
    def content_hash(self) -> str:
        return self.base.attributes.get("content_hash")

    def __len__(self) -> int:
        return self.num_structures

    def pair_min_distances(self, cutoff: float | None = None) -> dict[str, float]:
        """The shortest distance (Å) of every element pair in the set, periodic images included: ``{"Cu-Ni": 2.21,
        ...}``; pairs never closer than ``cutoff`` (default 5 Å) are left out. See
        :func:`aiida_mlip_trainer.physics.baselines.pair_min_distances` (one neighbour list per structure)."""
        from ..physics.baselines import MIN_DISTANCE_SEARCH_CUTOFF, pair_min_distances

        return pair_min_distances(self.to_atoms(), MIN_DISTANCE_SEARCH_CUTOFF if cutoff is None else cutoff)

    # -------------------------------------------------------------------------------------------------- exports
    def to_atoms(self) -> list:
        """The structures as :class:`ase.Atoms`; labels, when present, on a ``SinglePointCalculator``."""
        return atoms_from_arrays(self.get_arrays())

    def to_dataframe(self):
        """A pandas DataFrame in pacemaker's layout: ``name``, ``ase_atoms`` and, when labelled, ``energy``,
        ``energy_corrected`` (the same total energy: no reference energies are subtracted), ``forces`` and
        ``stress``."""
        return dataframe_from_arrays(self.get_arrays())

    def write_pacemaker_pickle(self, path: str | os.PathLike) -> pathlib.Path:
        """Write pacemaker's dataset file (gzip-compressed pandas pickle, protocol 4) and return its path."""
        return write_pacemaker_pickle(self.to_dataframe(), path)

    def write(self, path: str | os.PathLike, format: str | None = None) -> pathlib.Path:
        """Write the structures with their labels to any format ASE writes (extxyz recommended)."""
        from ase.io import write

        path = pathlib.Path(path)
        write(str(path), self.to_atoms(), format=format)
        return path
