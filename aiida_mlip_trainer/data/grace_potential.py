"""`GraceFSPotentialData`: a GRACE-FS potential fitted by gracemaker, exported to python-ace's FS YAML.

A :class:`~aiida_mlip_trainer.data.pace_potential.PacePotentialData` of another kind (``model_kind`` ``grace-fs``,
in the content hash): the same baseline, active set (``pace_activeset`` reads the FS YAML and writes its ``.asi``),
export and checks, with python-ace's GRACE-FS evaluator instead of the ACE one, and gracemaker's checkpoint kept
beside the FS YAML (``model.yaml`` and ``checkpoint.*``) so that a later fit can fine-tune from it. Every port that
takes a ``PacePotentialData`` takes it.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any, ClassVar

from ..names import check_file_stem
from ..physics.reference_energy import finite_energies
from .pace_potential import ASI_FILENAME, YAML_FILENAME, PacePotentialData, PotentialError, read_bytes

__all__ = ("CHECKPOINT_FILES", "MODEL_FILENAME", "GraceFSPotentialData")

# gracemaker's model (the instructions) and one TensorFlow checkpoint of it, as the fit job copies them.
CHECKPOINT_FILES = ("checkpoint.index", "checkpoint.data-00000-of-00001")
MODEL_FILENAME = "model.yaml"
# The E0 per element gracemaker subtracted (its FS export leaves them out): added back by the calculator.
REFERENCE_FILENAME = "reference_energy.json"


def _grace_summary(yaml_bytes: bytes) -> dict[str, Any]:
    """Elements, cutoff, number of functions and the per-element layout of the active set, read by python-ace's
    ``GRACEFSBasisSet`` (ValueError for a file that is not a GRACE-FS YAML)."""
    from pyace.grace_fs import GRACEFSBasisSet

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / YAML_FILENAME
        path.write_bytes(yaml_bytes)
        try:
            basis = GRACEFSBasisSet(str(path))
        except Exception as exc:  # the C++ reader raises RuntimeError with the YAML detail
            raise ValueError(f"not a GRACE-FS potential YAML file: {exc}") from exc
    names = list(basis.elements_name)
    counts = [int(count) for count in basis.nfuncs]
    return {
        "elements": sorted(names),
        "cutoff": float(basis.cutoffmax),
        "num_functions": int(sum(counts)),
        # The linear active set only (pace_activeset without -f): ndensity 1.
        "basis_layout": {name: {"num_functions": counts[index], "ndensity": 1} for index, name in enumerate(names)},
        "reference_energy": {},  # set from the reference_energy argument
    }


class GraceFSPotentialData(PacePotentialData):
    """A GRACE-FS potential: ``potential.yaml`` (the FS YAML of ``grace_utils export -sf``, what python-ace's
    ``PyGRACEFSCalculator`` and LAMMPS's ``pair_style grace/fs`` read), optionally ``potential.asi`` (its active set)
    and gracemaker's ``model.yaml`` and checkpoint (for fine-tuning). Attributes as
    :class:`~aiida_mlip_trainer.data.pace_potential.PacePotentialData`'s, ``model_kind`` ``grace-fs``,
    ``has_checkpoint``; ``reference_energy`` is ``{}``: the energies per element are inside the model."""

    MODEL_KIND: ClassVar[str] = "grace-fs"
    FILENAMES: ClassVar[tuple[str, ...]] = (
        YAML_FILENAME,
        ASI_FILENAME,
        MODEL_FILENAME,
        *CHECKPOINT_FILES,
        REFERENCE_FILENAME,
    )

    def __init__(
        self,
        potential: str | os.PathLike | bytes | None = None,
        *,
        active_set: str | os.PathLike | bytes | None = None,
        checkpoint: dict[str, str | os.PathLike | bytes] | None = None,
        reference_energy: dict[str, float] | None = None,
        baseline: dict | None = None,
        fitted_with: dict | None = None,
        **kwargs,
    ):
        # orm.Data's own constructor only: the ACE one reads an ACE file.
        super(PacePotentialData, self).__init__(**kwargs)
        if potential is None:
            raise TypeError("`potential` (the GRACE-FS .yaml file or its content) is required")
        yaml_bytes = read_bytes(potential)
        files = {YAML_FILENAME: yaml_bytes, ASI_FILENAME: None if active_set is None else read_bytes(active_set)}
        if checkpoint is not None:
            expected = {MODEL_FILENAME, *CHECKPOINT_FILES}
            if set(checkpoint) != expected:
                raise ValueError(f"checkpoint must hold exactly {sorted(expected)}, got {sorted(checkpoint)}")
            files.update({name: read_bytes(source) for name, source in checkpoint.items()})
        summary = self._summary(yaml_bytes)
        if reference_energy:
            reference = finite_energies(reference_energy)
            if sorted(reference) != summary["elements"]:
                raise ValueError(f"reference_energy {reference} must give E0 for each of {summary['elements']}")
            files[REFERENCE_FILENAME] = json.dumps(reference, sort_keys=True).encode()
            summary["reference_energy"] = reference
        self._put_files(files, summary, baseline, fitted_with)
        self.base.attributes.set("has_checkpoint", checkpoint is not None)

    @classmethod
    def get_or_create(
        cls, potential, *, active_set=None, checkpoint=None, reference_energy=None, baseline=None, fitted_with=None
    ):
        """Return the stored node with exactly these files (same content hash), or store a new one."""
        from aiida import orm

        candidate = cls(
            potential,
            active_set=active_set,
            checkpoint=checkpoint,
            reference_energy=reference_energy,
            baseline=baseline,
            fitted_with=fitted_with,
        )
        query = orm.QueryBuilder().append(
            cls, filters={"attributes.content_hash": candidate.base.attributes.get("content_hash")}
        )
        existing = query.first(flat=True)
        return existing if existing is not None else candidate.store()

    @staticmethod
    def _summary(yaml_bytes: bytes) -> dict[str, Any]:
        return _grace_summary(yaml_bytes)

    @property
    def reference_energy(self) -> dict[str, float]:
        """E0 per element (eV/atom) that gracemaker subtracted and :meth:`get_calculator` adds back (the FS YAML
        leaves them out); ``{}`` for none. Read from the node's file, checked against the content hash."""
        content = self._verified_files().get(REFERENCE_FILENAME)
        if content is None:
            return {}
        try:
            reference = finite_energies(json.loads(content))
        except (ValueError, TypeError, AttributeError) as error:
            raise PotentialError(f"{self._where()} {REFERENCE_FILENAME}: {error}") from None
        if sorted(reference) != self.elements:
            raise PotentialError(f"{self._where()} {REFERENCE_FILENAME}: not one E0 per element {self.elements}")
        return reference

    @property
    def has_checkpoint(self) -> bool:
        return bool(self.base.attributes.get("has_checkpoint", False))

    def verify(self) -> GraceFSPotentialData:
        super().verify()
        present = set(self._verified_files())
        if self.has_checkpoint is not (MODEL_FILENAME in present):
            raise PotentialError(
                f"{self._where()}: attribute 'has_checkpoint' does not say which files there are: the node is "
                "corrupt or was altered; do not use it"
            )
        return self

    def checkpoint_files(self) -> dict[str, bytes]:
        """gracemaker's ``model.yaml`` and checkpoint files by name (checked against the content hash), to start a
        fit from; :class:`PotentialError` when the node has none."""
        files = self._verified_files()
        if MODEL_FILENAME not in files:
            raise PotentialError(f"{self._where()} has no gracemaker checkpoint: it cannot be fine-tuned")
        return {name: files[name] for name in (MODEL_FILENAME, *CHECKPOINT_FILES)}

    def with_active_set(self, active_set: bytes) -> GraceFSPotentialData:
        """A new (unstored) GRACE-FS potential with the same files (checkpoint and E0 included), baseline and versions,
        and this active set."""
        return GraceFSPotentialData(
            self.read_file(YAML_FILENAME),
            active_set=active_set,
            checkpoint=self.checkpoint_files() if self.has_checkpoint else None,
            reference_energy=self.reference_energy or None,
            baseline=self.baseline,
            fitted_with=self.fitted_with,
        )

    def get_ace_calculator(self, **kwargs):
        """The GRACE-FS part alone (:class:`pyace.asecalc.PyGRACEFSCalculator`): energy, forces, stress (ASE's sign),
        and with an active set the per-atom extrapolation grade in ``calc.results['gamma']``. Without the baseline:
        use :meth:`get_calculator` for predictions."""
        from pyace.asecalc import PyGRACEFSCalculator

        with tempfile.TemporaryDirectory() as tmp:
            files = self.write_files(tmp)
            calculator = PyGRACEFSCalculator(str(files["yaml"]), **kwargs)
            if "asi" in files:
                calculator.set_active_set(str(files["asi"]))
        return calculator

    def lammps_commands(self, yace_filename: str = "potential.yaml") -> list[str]:
        """The LAMMPS lines for this potential as trained: ``pair_style grace/fs`` on the FS YAML (with the active
        set, ``pair_coeff * * potential.yaml potential.asi Cu``, when it has one) alone, or ``hybrid/overlay`` with
        the baseline's own style. Atom types are numbered in the order of :attr:`elements`."""
        check_file_stem(yace_filename, "the FS YAML file name")
        elements, baseline = self.elements, self.baseline
        files = [yace_filename]
        if self.has_active_set:
            files.append(str(pathlib.PurePath(yace_filename).with_suffix(".asi")))
        if baseline is None:
            return ["pair_style grace/fs", f"pair_coeff * * {' '.join(files)} {' '.join(elements)}"]
        from ..formats.lammps import lammps_pair_commands

        return lammps_pair_commands(baseline, elements, ace_file=" ".join(files), ace_style="grace/fs")
