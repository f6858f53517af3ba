"""`PacePotentialData`: a fitted ACE potential (pacemaker ``.yaml``), optionally its ``.yace`` and ``.asi``."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any

from aiida import orm

__all__ = ("PacePotentialData", "basis_layout_of")

YAML_FILENAME = "potential.yaml"
YACE_FILENAME = "potential.yace"
ASI_FILENAME = "potential.asi"


def _read_bytes(source: str | os.PathLike | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    return pathlib.Path(source).read_bytes()


def basis_layout_of(basis) -> dict[str, dict[str, int]]:
    """Per element of a pyace ``ACEBBasisSet``: ``num_functions`` (the size of its active set, one MaxVol row per
    function) and ``ndensity``."""
    from pyace.activelearning import compute_number_of_functions

    counts = compute_number_of_functions(basis)
    return {
        name: {
            "num_functions": int(counts[index]),
            "ndensity": int(basis.map_embedding_specifications[index].ndensity),
        }
        for index, name in enumerate(basis.elements_name)
    }


def _basis_summary(yaml_bytes: bytes) -> dict[str, Any]:
    """Elements, cutoff, number of basis functions and the per-element layout, read by pyace itself (so a broken
    file is refused here)."""
    from pyace import ACEBBasisSet, BBasisConfiguration

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / YAML_FILENAME
        path.write_bytes(yaml_bytes)
        try:
            config = BBasisConfiguration(str(path))
            basis = ACEBBasisSet(config)
        except Exception as exc:  # pyace raises plain RuntimeError/ValueError with the YAML detail
            raise ValueError(f"not a pacemaker potential YAML file: {exc}") from exc
    return {
        "elements": sorted(basis.elements_name),
        "cutoff": float(basis.cutoffmax),
        "num_functions": int(config.total_number_of_functions),
        "basis_layout": basis_layout_of(basis),
    }


def potential_hash(
    yaml_bytes: bytes, yace_bytes: bytes | None = None, asi_bytes: bytes | None = None, baseline: dict | None = None
) -> str:
    """sha256 over the files and the baseline: the same fit on another baseline is another potential."""
    digest = hashlib.sha256()
    for label, content in (("yaml", yaml_bytes), ("yace", yace_bytes), ("asi", asi_bytes)):
        if content is not None:
            digest.update(f"{label}:{len(content)};".encode())
            digest.update(content)
    if baseline is not None:
        digest.update(b"baseline:" + json.dumps(baseline, sort_keys=True).encode())
    return digest.hexdigest()


class PacePotentialData(orm.Data):
    """An ACE potential fitted by pacemaker.

    Holds ``potential.yaml`` (pacemaker's B-basis format, what fitting and fine-tuning use) and optionally
    ``potential.yace`` (LAMMPS ``pair_style pace``) and ``potential.asi`` (the active set, for the extrapolation
    grade gamma). Attributes: ``elements``, ``cutoff`` (Å), ``num_functions``, ``basis_layout`` (per element: its
    number of functions, i.e. the size of its active set, and ``ndensity``), ``has_yace``, ``has_active_set``,
    ``baseline`` (the physical baseline the potential was fitted on top of, or None) and ``content_hash``.
    """

    def __init__(
        self,
        potential: str | os.PathLike | bytes | None = None,
        *,
        yace: str | os.PathLike | bytes | None = None,
        active_set: str | os.PathLike | bytes | None = None,
        baseline: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if potential is None:
            raise TypeError("`potential` (the pacemaker .yaml file or its content) is required")
        yaml_bytes = _read_bytes(potential)
        yace_bytes = None if yace is None else _read_bytes(yace)
        asi_bytes = None if active_set is None else _read_bytes(active_set)
        summary = _basis_summary(yaml_bytes)

        for filename, content in ((YAML_FILENAME, yaml_bytes), (YACE_FILENAME, yace_bytes), (ASI_FILENAME, asi_bytes)):
            if content is not None:
                self.base.repository.put_object_from_bytes(content, filename)
        self.base.attributes.set_many(
            {
                **summary,
                "has_yace": yace_bytes is not None,
                "has_active_set": asi_bytes is not None,
                "baseline": baseline,
                "content_hash": potential_hash(yaml_bytes, yace_bytes, asi_bytes, baseline),
            }
        )

    @classmethod
    def get_or_create(
        cls,
        potential: str | os.PathLike | bytes,
        *,
        yace: str | os.PathLike | bytes | None = None,
        active_set: str | os.PathLike | bytes | None = None,
        baseline: dict | None = None,
    ) -> PacePotentialData:
        """Return the stored node with exactly these files (same content hash), or store a new one."""
        candidate = cls(potential, yace=yace, active_set=active_set, baseline=baseline)
        query = orm.QueryBuilder().append(
            cls, filters={"attributes.content_hash": candidate.base.attributes.get("content_hash")}
        )
        existing = query.first(flat=True)
        return existing if existing is not None else candidate.store()

    # ------------------------------------------------------------------------------------------------ attributes
    @property
    def elements(self) -> list[str]:
        return list(self.base.attributes.get("elements"))

    @property
    def cutoff(self) -> float:
        return self.base.attributes.get("cutoff")

    @property
    def num_functions(self) -> int:
        return self.base.attributes.get("num_functions")

    @property
    def basis_layout(self) -> dict[str, dict[str, int]]:
        """Per element: ``num_functions`` (the number of atomic environments MaxVol needs for it) and ``ndensity``.
        Read from the attribute stored at construction; nodes made before it existed are read once by pyace."""
        layout = self.base.attributes.get("basis_layout", None)
        if layout is None:
            layout = _basis_summary(self.get_yaml().encode())["basis_layout"]
        return layout

    @property
    def baseline(self) -> dict | None:
        return self.base.attributes.get("baseline")

    @property
    def has_active_set(self) -> bool:
        return self.base.attributes.get("has_active_set")

    @property
    def content_hash(self) -> str:
        return self.base.attributes.get("content_hash")

    # --------------------------------------------------------------------------------------------------- files
    def get_yaml(self) -> str:
        return self.base.repository.get_object_content(YAML_FILENAME, mode="r")

    def write_files(self, directory: str | os.PathLike, stem: str = "potential") -> dict[str, pathlib.Path]:
        """Write the stored files as ``<stem>.yaml`` / ``.yace`` / ``.asi`` into ``directory``; return their paths."""
        directory = pathlib.Path(directory)
        written = {}
        for filename in self.base.repository.list_object_names():
            suffix = pathlib.Path(filename).suffix
            target = directory / f"{stem}{suffix}"
            target.write_bytes(self.base.repository.get_object_content(filename, mode="rb"))
            written[suffix.lstrip(".")] = target
        return written

    def get_ace_calculator(self, **kwargs):
        """The ACE part alone (:class:`pyace.PyACECalculator`): energy, forces, stress, and with an active set the
        per-atom extrapolation grade in ``calc.results['gamma']``. Without the baseline: use
        :meth:`get_calculator` for predictions."""
        from pyace import PyACECalculator

        with tempfile.TemporaryDirectory() as tmp:
            files = self.write_files(tmp)
            calculator = PyACECalculator(str(files["yaml"]), **kwargs)
            if "asi" in files:
                # The `active_set=` keyword of PyACECalculator is silently ignored in 0.4.0rc1: set it explicitly.
                calculator.set_active_set(str(files["asi"]))
        return calculator

    def get_calculator(self, **kwargs):
        """A ready ASE calculator for predictions: ACE plus, when the potential was fitted on top of a physical
        baseline, that baseline (an :class:`ase.calculators.mixing.SumCalculator`)."""
        ace = self.get_ace_calculator(**kwargs)
        if self.baseline is None:
            return ace
        from ase.calculators.mixing import SumCalculator

        from ..baselines import baseline_calculator

        return SumCalculator([ace, baseline_calculator(self.baseline)])

    def lammps_commands(self, yace_filename: str = "potential.yace") -> list[str]:
        """The LAMMPS ``pair_style``/``pair_coeff`` lines for this potential as trained: ``pair_style pace`` alone,
        or ``hybrid/overlay`` of ``pace`` and the baseline's own LAMMPS style. Atom types are numbered in the
        order of :attr:`elements`."""
        if self.baseline is None:
            return ["pair_style pace", f"pair_coeff * * {yace_filename} {' '.join(self.elements)}"]
        from ..baselines import lammps_pair_commands

        return lammps_pair_commands(self.baseline, self.elements, ace_file=yace_filename)
