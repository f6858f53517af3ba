"""`PacePotentialData`: a fitted ACE potential (pacemaker ``.yaml``), optionally its ``.yace`` and ``.asi``.

A stored node is untrusted when it is read again (it may come from an archive): its element symbols are checked to
be chemical symbols and its baseline to be a valid baseline whenever they are read (they reach LAMMPS lines and
pacemaker's input), and its files are compared with its ``content_hash`` before they are written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any, ClassVar

from aiida import orm

from ..formats.basis import basis_layout_of, reference_energies_of, set_yace_reference_energies
from ..names import UnsafeNameError, check_element_symbols, check_file_stem
from ..tools.active_set import ActiveSetError, check_active_set

__all__ = ("PacePotentialData", "PotentialError", "basis_layout_of", "read_bytes")

YAML_FILENAME = "potential.yaml"
YACE_FILENAME = "potential.yace"
ASI_FILENAME = "potential.asi"
# The only repository files a potential has; nothing else is ever read from the repository or written out.
FILENAMES = (YAML_FILENAME, YACE_FILENAME, ASI_FILENAME)


class PotentialError(ValueError):
    """A potential node is corrupt or was altered: the message names the node and what does not hold."""


def read_bytes(source: str | os.PathLike | bytes) -> bytes:
    """The content of a file given by its path, or the bytes themselves."""
    if isinstance(source, bytes):
        return source
    return pathlib.Path(source).read_bytes()


def _load_config(yaml_bytes: bytes):
    """pyace's ``BBasisConfiguration`` of the file (so a broken file is refused here, ValueError)."""
    from pyace import BBasisConfiguration

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / YAML_FILENAME
        path.write_bytes(yaml_bytes)
        try:
            return BBasisConfiguration(str(path))
        except Exception as exc:  # pyace raises plain RuntimeError/ValueError with the YAML detail
            raise ValueError(f"not a pacemaker potential YAML file: {exc}") from exc


def _basis_summary(yaml_bytes: bytes) -> dict[str, Any]:
    """Elements, cutoff, number of basis functions, the per-element layout and the reference energies (E0 per
    element, ``{}`` for none), read by pyace itself."""
    from pyace import ACEBBasisSet

    config = _load_config(yaml_bytes)
    try:
        basis = ACEBBasisSet(config)
    except Exception as exc:
        raise ValueError(f"not a pacemaker potential YAML file: {exc}") from exc
    elements = sorted(basis.elements_name)
    return {
        "elements": elements,
        "cutoff": float(basis.cutoffmax),
        "num_functions": int(config.total_number_of_functions),
        "basis_layout": basis_layout_of(basis),
        "reference_energy": reference_energies_of(config, elements),
    }


def potential_hash(
    yaml_bytes: bytes,
    yace_bytes: bytes | None = None,
    asi_bytes: bytes | None = None,
    baseline: dict | None = None,
    *,
    model_kind: str = "ace",
    extra: dict[str, bytes] | None = None,
) -> str:
    """sha256 over the files, the baseline and (other than ACE) the kind of model: the same fit on another baseline
    is another potential. ``extra`` are further files by name (a GRACE-FS potential's checkpoint)."""
    digest = hashlib.sha256()
    if model_kind != "ace":
        digest.update(f"model_kind:{model_kind};".encode())
    files = [("yaml", yaml_bytes), ("yace", yace_bytes), ("asi", asi_bytes), *sorted((extra or {}).items())]
    for label, content in files:
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
    ``baseline`` (the physical baseline the potential was fitted on top of, or None), ``reference_energy`` (the
    energy per atom of each element that the fit subtracted from its labels, pacemaker's ``data: reference_energy``,
    added back by :meth:`get_calculator` and written as the ``E0`` of the ``.yace``; ``{}`` for none),
    ``content_hash`` and, for a
    potential a fit produced, ``fitted_with``: the versions of python-ace, tensorpotential and TensorFlow that ran
    the fit, read on the machine where it ran (query them:
    ``QueryBuilder().append(PacePotentialData, filters={"attributes.fitted_with.tensorflow": "2.20.0"})``) and
    ``model_kind`` (``ace``; a subclass holds another kind of model of the same family, e.g. GRACE-FS).
    """

    MODEL_KIND: ClassVar[str] = "ace"
    # The only repository files the node may have; nothing else is ever read from the repository or written out.
    FILENAMES: ClassVar[tuple[str, ...]] = FILENAMES

    def __init__(
        self,
        potential: str | os.PathLike | bytes | None = None,
        *,
        yace: str | os.PathLike | bytes | None = None,
        active_set: str | os.PathLike | bytes | None = None,
        baseline: dict | None = None,
        fitted_with: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if potential is None:
            raise TypeError("`potential` (the pacemaker .yaml file or its content) is required")
        yaml_bytes = read_bytes(potential)
        yace_bytes = None if yace is None else read_bytes(yace)
        asi_bytes = None if active_set is None else read_bytes(active_set)
        summary = self._summary(yaml_bytes)
        if yace_bytes is not None and summary["reference_energy"]:
            # pace_yaml2yace writes E0 = 0 whatever the fit subtracted: the .yace gets the .yaml's reference energies,
            # so that both files of the node (and LAMMPS) predict the same total energies.
            try:
                yace_text = set_yace_reference_energies(yace_bytes.decode(), summary["reference_energy"])
            except (UnicodeDecodeError, ValueError) as error:
                raise ValueError(f"the .yace file: {error}") from None
            yace_bytes = yace_text.encode()
        self._put_files(
            {YAML_FILENAME: yaml_bytes, YACE_FILENAME: yace_bytes, ASI_FILENAME: asi_bytes},
            summary,
            baseline,
            fitted_with,
        )

    def _put_files(self, files: dict[str, bytes | None], summary: dict, baseline, fitted_with) -> None:
        """Check the active set against the basis, put the files (None: absent) and set the attributes."""
        if baseline is not None:
            baseline = _valid_baseline(baseline, "baseline")
        asi_bytes = files.get(ASI_FILENAME)
        if asi_bytes is not None:
            try:
                check_active_set(asi_bytes, summary["basis_layout"])
            except ActiveSetError as error:
                raise ValueError(f"the active set (.asi): {error}") from None
        files = {name: content for name, content in files.items() if content is not None}
        for filename, content in files.items():
            self.base.repository.put_object_from_bytes(content, filename)
        attributes = {
            **summary,
            "model_kind": self.MODEL_KIND,
            "has_yace": YACE_FILENAME in files,
            "has_active_set": asi_bytes is not None,
            "baseline": baseline,
            "content_hash": self._hash(files, baseline),
        }
        if fitted_with:
            attributes["fitted_with"] = _versions(fitted_with)
        self.base.attributes.set_many(attributes)

    @staticmethod
    def _summary(yaml_bytes: bytes) -> dict[str, Any]:
        """The attributes read from the potential file: elements, cutoff, num_functions, basis_layout,
        reference_energy (ValueError for a file that is not this kind of potential)."""
        return _basis_summary(yaml_bytes)

    def _hash(self, files: dict[str, bytes], baseline) -> str:
        extra = {name: content for name, content in files.items() if name not in FILENAMES}
        return potential_hash(
            files[YAML_FILENAME],
            files.get(YACE_FILENAME),
            files.get(ASI_FILENAME),
            baseline,
            model_kind=self.MODEL_KIND,
            extra=extra,
        )

    @classmethod
    def get_or_create(
        cls,
        potential: str | os.PathLike | bytes,
        *,
        yace: str | os.PathLike | bytes | None = None,
        active_set: str | os.PathLike | bytes | None = None,
        baseline: dict | None = None,
        fitted_with: dict | None = None,
    ) -> PacePotentialData:
        """Return the stored node with exactly these files (same content hash), or store a new one."""
        candidate = cls(potential, yace=yace, active_set=active_set, baseline=baseline, fitted_with=fitted_with)
        query = orm.QueryBuilder().append(
            cls, filters={"attributes.content_hash": candidate.base.attributes.get("content_hash")}
        )
        existing = query.first(flat=True)
        return existing if existing is not None else candidate.store()

    # ------------------------------------------------------------------------------------------------ attributes
    def _where(self) -> str:
        name = type(self).__name__
        return f"{name}<{self.pk}> ({self.uuid})" if self.is_stored else f"an unstored {name}"

    @property
    def elements(self) -> list[str]:
        """The chemical symbols of the potential, in pacemaker's order (LAMMPS atom types are numbered in it);
        checked to be chemical symbols, since they reach LAMMPS lines and pacemaker's input."""
        try:
            return check_element_symbols(self.base.attributes.get("elements"), f"{self._where()} attribute 'elements'")
        except UnsafeNameError as error:
            raise PotentialError(f"{error}: the node is corrupt or was altered; do not use it") from None

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
        """The physical baseline (``{"type": ..., "params": ...}``) the potential was fitted on top of, or None;
        checked to be a valid baseline, since it reaches LAMMPS lines and Python snippets."""
        baseline = self.base.attributes.get("baseline", None)
        return None if baseline is None else _valid_baseline(baseline, f"{self._where()} attribute 'baseline'")

    @property
    def reference_energy(self) -> dict[str, float]:
        """E0 per element (eV/atom) that the fit subtracted and predictions add back; ``{}`` for none. Read from the
        potential file itself (checked against the content hash), not from the attribute, which is for queries;
        :class:`PotentialError` naming the node when the file's record is not energies per element."""
        try:
            return reference_energies_of(_load_config(self.read_file(YAML_FILENAME)), self.elements)
        except PotentialError:
            raise
        except ValueError as error:
            raise PotentialError(f"{self._where()} potential.yaml: {error}") from None

    @property
    def has_active_set(self) -> bool:
        return self.base.attributes.get("has_active_set")

    @property
    def content_hash(self) -> str:
        return self.base.attributes.get("content_hash")

    @property
    def fitted_with(self) -> dict[str, str | None]:
        """Versions of the fitting software (``python-ace``, ``tensorpotential``, ``tensorflow``, ...), ``{}``
        when unknown (a potential not made by a fit of this plugin)."""
        return dict(self.base.attributes.get("fitted_with", None) or {})

    def verify(self) -> PacePotentialData:
        """Check the node as a job would use it and return it; :class:`PotentialError` naming the node (and the
        element, for the active set) when it is corrupt or was altered.

        Checked: the element symbols and the baseline (they reach LAMMPS lines and Python snippets), the files
        against the content hash, that ``has_yace``/``has_active_set`` say which files there are, the ``.yaml``
        read by pyace (its elements and basis layout must be the attributes', its reference energies energies per
        element), and the ``.asi`` against that basis (:func:`~aiida_mlip_trainer.tools.active_set.check_active_set`:
        one finite, non-singular matrix per element, of the size of its basis). The content hash alone does not
        settle the ``.asi``: whoever alters a node can recompute it."""
        elements, _ = self.elements, self.baseline
        files = self._verified_files()
        where, altered = self._where(), "the node is corrupt or was altered; do not use it"
        for flag, filename in (("has_yace", YACE_FILENAME), ("has_active_set", ASI_FILENAME)):
            if self.base.attributes.get(flag, None) is not (filename in files):
                raise PotentialError(
                    f"{where}: attribute {flag!r} is {self.base.attributes.get(flag, None)!r} but the node "
                    f"{'has' if filename in files else 'has no'} {filename}: {altered}"
                )
        if self.base.attributes.get("model_kind", "ace") != self.MODEL_KIND:
            raise PotentialError(
                f"{where}: attribute 'model_kind' is {self.base.attributes.get('model_kind', None)!r}, not "
                f"{self.MODEL_KIND!r}: {altered}"
            )
        try:
            summary = self._summary(files[YAML_FILENAME])
        except ValueError as error:
            raise PotentialError(f"{where} potential.yaml: {error}: {altered}") from None
        if summary["elements"] != elements:
            raise PotentialError(
                f"{where}: attribute 'elements' {elements} but potential.yaml has {summary['elements']}: {altered}"
            )
        stored_layout = self.base.attributes.get("basis_layout", None)
        if stored_layout is not None and stored_layout != summary["basis_layout"]:
            raise PotentialError(f"{where}: attribute 'basis_layout' does not match potential.yaml: {altered}")
        if ASI_FILENAME in files:
            try:
                check_active_set(files[ASI_FILENAME], summary["basis_layout"])
            except ActiveSetError as error:
                raise PotentialError(f"{where} {ASI_FILENAME} (the active set): {error}: {altered}") from None
        return self

    # --------------------------------------------------------------------------------------------------- files
    def read_file(self, filename: str) -> bytes:
        """The content of one of the potential's files (``potential.yaml``, ``.yace`` or ``.asi``), after all files
        were compared with the node's ``content_hash`` (a node from an archive may have been altered)."""
        if filename not in self.FILENAMES:
            raise ValueError(f"a potential has only the files {list(self.FILENAMES)}, not {filename!r}")
        return self._verified_files()[filename]

    def _verified_files(self) -> dict[str, bytes]:
        present = set(self.base.repository.list_object_names())
        files = {
            name: self.base.repository.get_object_content(name, mode="rb") for name in self.FILENAMES if name in present
        }
        if YAML_FILENAME not in files:
            raise PotentialError(f"{self._where()} has no {YAML_FILENAME}: the node is corrupt or was altered")
        expected = self._hash(files, self.base.attributes.get("baseline", None))
        if expected != self.content_hash:
            raise PotentialError(
                f"{self._where()}: its files and baseline do not match its content_hash attribute: the node is "
                "corrupt or was altered (e.g. in an archive); do not use it"
            )
        return files

    def get_yaml(self) -> str:
        return self.read_file(YAML_FILENAME).decode()

    def write_files(self, directory: str | os.PathLike, stem: str = "potential") -> dict[str, pathlib.Path]:
        """Write the stored files as ``<stem>.yaml`` / ``.yace`` / ``.asi`` into ``directory``; return their paths
        by suffix. ``stem`` must be a plain file stem (no directory): only ``directory`` is written into."""
        stem = check_file_stem(stem, "file stem")
        directory = pathlib.Path(directory)
        written = {}
        for filename, content in self._verified_files().items():
            if filename not in FILENAMES:
                continue  # not a file of the deployed potential (a GRACE-FS potential's checkpoint)
            suffix = pathlib.Path(filename).suffix
            target = directory / f"{stem}{suffix}"
            target.write_bytes(content)
            written[suffix.lstrip(".")] = target
        return written

    def with_active_set(self, active_set: bytes) -> PacePotentialData:
        """A new (unstored) potential of the same kind with the same files, baseline and versions, and this active
        set (an ``.asi`` that pace_activeset wrote for it)."""
        yace = self.read_file(YACE_FILENAME) if self.base.attributes.get("has_yace", False) else None
        return PacePotentialData(
            self.read_file(YAML_FILENAME),
            yace=yace,
            active_set=active_set,
            baseline=self.baseline,
            fitted_with=self.fitted_with,
        )

    def get_ace_calculator(self, **kwargs):
        """The ACE part alone (:class:`pyace.PyACECalculator`): energy, forces, stress, and with an active set the
        per-atom extrapolation grade in ``calc.results['gamma']``. Without the baseline and the reference energy:
        use :meth:`get_calculator` for predictions."""
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
        baseline, that baseline, plus, when the fit subtracted reference energies, their sum (an
        :class:`~aiida_mlip_trainer.physics.ace_sum.AceSumCalculator` of the parts): total energies, as the labels
        were, and with an active set ACE's per-atom extrapolation grade in ``calc.results['gamma']``."""
        ace = self.get_ace_calculator(**kwargs)
        parts = []
        if self.baseline is not None:
            from ..physics.baselines import baseline_calculator

            parts.append(baseline_calculator(self.baseline))
        reference = self.reference_energy
        if reference:
            from ..physics.reference_energy import ReferenceEnergyCalculator

            parts.append(ReferenceEnergyCalculator(reference))
        if not parts:
            return ace
        from ..physics.ace_sum import AceSumCalculator

        return AceSumCalculator(ace, parts)

    def lammps_commands(self, yace_filename: str = "potential.yace") -> list[str]:
        """The LAMMPS ``pair_style``/``pair_coeff`` lines for this potential as trained: ``pair_style pace`` alone,
        or ``hybrid/overlay`` of ``pace`` and the baseline's own LAMMPS style. Atom types are numbered in the
        order of :attr:`elements`."""
        check_file_stem(yace_filename, "the .yace file name")
        elements, baseline = self.elements, self.baseline  # both checked: only symbols and numbers reach LAMMPS
        if baseline is None:
            return ["pair_style pace", f"pair_coeff * * {yace_filename} {' '.join(elements)}"]
        from ..formats.lammps import lammps_pair_commands

        return lammps_pair_commands(baseline, elements, ace_file=yace_filename)


def _valid_baseline(baseline, where: str) -> dict:
    """The baseline normalised by :func:`~aiida_mlip_trainer.physics.baselines.validate_baseline`, or PotentialError."""
    from ..physics.baselines import BaselineError, validate_baseline

    try:
        return validate_baseline(baseline)
    except BaselineError as error:
        raise PotentialError(f"{where}: {error}") from None


# What `fitted_with` may hold: package name -> version string (or None when it could not be read).
_VERSION_KEYS = ("python-ace", "tensorpotential", "tensorflow", "tf-keras", "numpy", "python")


def _versions(versions: dict) -> dict[str, str | None]:
    """Only the known package names, each a short version string or None."""
    return {
        key: (str(versions[key])[:64] if versions.get(key) is not None else None)
        for key in _VERSION_KEYS
        if key in versions
    }
