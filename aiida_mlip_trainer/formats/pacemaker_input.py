"""The one writer of pacemaker's ``input.yaml``, and the checks on the parameters that go into it.

A user gives the sections of ``input.yaml`` as a dictionary (``potential``, ``fit``, ``backend``, ``data``,
``cutoff``, ``seed``). Only the keys listed below are accepted, per section: they are what python-ace 0.4.0rc1
reads (``pyace/cli/pacemaker.py``, ``generalfit.py``, ``preparedata.py``, ``multispecies_basisextension.py``,
``lossfuncspec.py``, ``fitadapter.py``; the optimisers of ``tensorpotential/compat/pace/fit.py``) less everything
that names a file or a Python object. The plugin owns every file pacemaker reads: it writes the datasets and the
previous potential into the input folder itself and names them in ``input.yaml``, so no path from the user's disk,
and no name of Python code, ever reaches a configuration that the provenance graph records. Refused keys get a
message that says what to do instead (:data:`REFUSED`); strings anywhere in the parameters may not look like paths.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..names import UnsafeNameError, check_element_symbols, control_characters

__all__ = (
    "ALLOWED_KEYS",
    "DEFAULT_SEED",
    "REFUSED",
    "build_input_yaml",
    "plain_values",
    "switch_ace_off_inside_zbl",
    "unknown_keys",
    "validate_parameters",
)

ALLOWED_SECTIONS = ("cutoff", "seed", "potential", "fit", "backend", "data")
# Data options the user may set; `filename`, `test_filename` and `datapath` are the plugin's to write.
ALLOWED_DATA_KEYS = ("test_size", "reference_energy")
REQUIRED_POTENTIAL_KEYS = ("embeddings", "bonds", "functions")
EVALUATORS = ("tensorpot", "pyace")
DEFAULT_SEED = 42

# The keys a user may set, per section (dotted paths; "<block>" is a block of embeddings/bonds/functions: ALL,
# UNARY, BINARY, ... or element symbols such as "Cu" or "Cu Ni").
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": ALLOWED_SECTIONS,
    "potential": ("elements", "deltaSplineBins", *REQUIRED_POTENTIAL_KEYS),
    "potential.embeddings.<block>": ("npot", "fs_parameters", "ndensity", "rho_core_cut", "drho_core_cut"),
    "potential.bonds.<block>": (
        "radbase",
        "radparameters",
        "rcut",
        "dcut",
        "r_in",
        "delta_in",
        "core-repulsion",
        "inner_cutoff_type",
        "NameOfCutoffFunction",
        "nradbase",
        "nradmax",
        "lmax",
    ),
    "potential.functions.<block>": ("nradmax_by_orders", "lmax_by_orders", "coefs_init"),
    "fit": (
        "loss",
        "optimizer",
        "maxiter",
        "options",
        "weighting",
        "fit_cycles",
        "repulsion",
        "trainable_parameters",
        "noise_relative_sigma",
        "noise_absolute_sigma",
        "randomize_func_coeffs",
        "early_stopping_patience",
        "min_relative_train_loss_per_iter",
        "min_relative_test_loss_per_iter",
    ),
    "fit.loss": ("kappa", "L1_coeffs", "L2_coeffs", "w0_rad", "w1_rad", "w2_rad", "w_orth"),
    "fit.weighting": (
        "type",
        "nfit",
        "cutoff",
        "DElow",
        "DEup",
        "DE",
        "DF",
        "wlow",
        "DFup",
        "n_lower",
        "n_upper",
        "reftype",
        "seed",
        "energy",
    ),
    "backend": (
        "evaluator",
        "batch_size",
        "batch_size_reduction",
        "batch_size_reduction_factor",
        "display_step",
        "gpu_config",
        "parallel_mode",
        "n_workers",
    ),
    "backend.gpu_config": ("gpu_ind", "mem_limit"),
    "data": ALLOWED_DATA_KEYS,
}
BLOCK_KEYWORDS = ("ALL", "UNARY", "BINARY", "TERNARY", "QUATERNARY", "QUINARY")
# tensorpotential's optimisers (the default backend); the pyace backend runs the scipy ones among them.
OPTIMIZERS = ("BFGS", "L-BFGS-B", "CG", "trf", "dogbox", "lm", "dual_annealing", "Adam", "SGD")
WEIGHTING_TYPES = ("EnergyBasedWeightingPolicy",)
_FILES_ARE_THE_PLUGINS = (
    "the plugin writes the dataset files into the job's folder and names them itself: pass the structures as the "
    "training_set / test_set inputs (TrainingSetData)"
)
# Keys python-ace reads that the plugin refuses, and why / what to do instead.
REFUSED: dict[str, str] = {
    "metadata": "pacemaker copies it into the potential file; the provenance graph records where a potential came "
    "from: leave it out",
    "potential.filename": "pacemaker would read the basis from a file outside the provenance graph: describe the "
    "basis with embeddings/bonds/functions, or give the potential as the `previous_potential` input to start from it",
    "potential.initial_potential": "pacemaker would read a potential from a file outside the provenance graph (and "
    "start a ladder fit): give the potential as the `previous_potential` input to continue or fine-tune from it",
    "potential.reset": "it only applies to potential.filename, which is refused: give the potential as the "
    "`previous_potential` input",
    "potential.overwrite_blocks_from_initial_bbasis": "it only applies to potential.initial_potential, which is "
    "refused: give the potential as the `previous_potential` input",
    "fit.callbacks": "pacemaker imports and calls any Python name given here, so a configuration could run code: "
    "not accepted (the plugin keeps pacemaker's interim potentials itself)",
    "fit.ladder_step": "ladder (basis extension) fitting is not supported: the plugin's restarts continue from "
    "interim potentials of one basis; fit the full basis",
    "fit.ladder_type": "ladder (basis extension) fitting is not supported: fit the full basis",
    "backend.imagetype": "the plugin does not keep pacemaker's plots: leave it out",
    "data.filename": _FILES_ARE_THE_PLUGINS,
    "data.test_filename": _FILES_ARE_THE_PLUGINS,
    "data.datapath": _FILES_ARE_THE_PLUGINS,
    "data.ignore_weights": "the plugin's datasets carry no weight columns: leave it out",
    "data.aug_factor": "the plugin does not augment data: leave it out",
}
_EXTERNAL_WEIGHTS = (
    "fit.weighting type ExternalWeightingPolicy makes pacemaker unpickle a weights file (filename_or_df), which "
    "can run code and lies outside the provenance graph: not accepted; use EnergyBasedWeightingPolicy or leave "
    "fit.weighting out (uniform weights)"
)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def max_bond_cutoff(potential: Mapping[str, Any]) -> float | None:
    """The largest ``rcut`` over the bond blocks (what python-ace uses as the neighbour-list cutoff)."""
    cutoffs = [
        float(block["rcut"])
        for block in potential.get("bonds", {}).values()
        if isinstance(block, Mapping) and "rcut" in block
    ]
    return max(cutoffs) if cutoffs else None


def plain_values(value: Any, where: str) -> str | None:
    """A message when ``value`` holds anything but finite numbers, booleans, one-line strings that do not look like
    paths, and lists and string-keyed dicts of those; else None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string"
            message = plain_values(item, f"{where}.{key}")
            if message:
                return message
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            message = plain_values(item, f"{where}[{index}]")
            if message:
                return message
        return None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return None if math.isfinite(value) else f"{where} must be finite, got {value!r}"
    if isinstance(value, str):
        if control_characters(value) or "/" in value or "\\" in value or value.startswith("~"):
            return (
                f"{where} is {value!r}, which looks like a file path: the trainer's settings never name files "
                "(the plugin writes and names every file pacemaker and gracemaker read)"
            )
        return None
    return f"{where} must be a number, a string, a list or a dictionary, got {type(value).__name__}"


def unknown_keys(mapping: Mapping, path: str, allowed: Iterable[str]) -> str | None:
    """A message for the first key of ``mapping`` (at the dotted ``path``) that is refused or not allowed."""
    allowed = tuple(allowed)
    for key in mapping:
        full = f"{path}.{key}" if path else str(key)
        if full in REFUSED:
            return f"{full} is not accepted: {REFUSED[full]}"
        if key not in allowed:
            where = f"in the `{path}` section" if path else "at the top level"
            return f"unknown key {full!r} {where}; allowed: {list(allowed)}"
    return None


def _subsection(value: Any, path: str, example: str) -> str | None:
    """A message unless ``value`` is a dictionary with only the keys allowed at ``path``."""
    if not isinstance(value, Mapping):
        return f"{path} must be a dictionary, e.g. {example}"
    return unknown_keys(value, path, ALLOWED_KEYS[path])


def _block_name(name: Any, path: str) -> str | None:
    """A message unless ``name`` is a block keyword (ALL, UNARY, ...) or element symbols ("Cu", "Cu Ni")."""
    if name in BLOCK_KEYWORDS:
        return None
    try:
        check_element_symbols(str(name).split(), f"{path}: block {name!r}")
    except UnsafeNameError as error:
        return f"{error}; a block is one of {list(BLOCK_KEYWORDS)} or element symbols separated by spaces"
    return None if isinstance(name, str) and name.split() else f"{path}: block {name!r} names no element"


def _check_potential_section(potential: Mapping[str, Any]) -> str | None:
    message = unknown_keys(potential, "potential", ALLOWED_KEYS["potential"])
    if message:
        return message
    if "elements" in potential:
        try:
            check_element_symbols(potential["elements"], "potential.elements")
        except UnsafeNameError as error:
            return str(error)
    if "deltaSplineBins" in potential and not (
        _is_number(potential["deltaSplineBins"]) and potential["deltaSplineBins"] > 0
    ):
        return f"potential.deltaSplineBins must be a positive number, got {potential['deltaSplineBins']!r}"
    for section in REQUIRED_POTENTIAL_KEYS:
        blocks = potential[section]
        if not isinstance(blocks, Mapping):
            return f"potential.{section} must be a dictionary of blocks, e.g. {{ALL: {{...}}}}"
        for name, block in blocks.items():
            path = f"potential.{section}.{name}"
            if section == "functions" and name == "number_of_functions_per_element":
                if not _is_positive_int(block):
                    return f"{path} must be a positive integer, got {block!r}"
                continue
            message = _block_name(name, f"potential.{section}")
            if message:
                return message
            if not isinstance(block, Mapping):
                return f"{path} must be a dictionary"
            message = unknown_keys(block, path, ALLOWED_KEYS[f"potential.{section}.<block>"])
            if message:
                return message
    return None


def _check_fit_section(fit: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str | None:
    message = unknown_keys(fit, "fit", ALLOWED_KEYS["fit"])
    if message:
        return message
    for key in ("maxiter", "fit_cycles"):
        if key in fit and not _is_positive_int(fit[key]):
            return f"fit.{key} must be a positive integer, got {fit[key]!r}"
    if "optimizer" in fit and fit["optimizer"] not in OPTIMIZERS:
        return f"fit.optimizer must be one of {list(OPTIMIZERS)}, got {fit['optimizer']!r}"
    message = _subsection(fit.get("loss", {}), "fit.loss", "{kappa: 0.3, L1_coeffs: 1e-8, L2_coeffs: 1e-8}")
    if message:
        return message
    options = fit.get("options", {})
    if not isinstance(options, Mapping) or not all(
        isinstance(key, str) and (isinstance(value, bool) or _is_number(value)) for key, value in options.items()
    ):
        return f"fit.options must be a dictionary of optimiser options with numbers as values, got {options!r}"
    if "weighting" in fit:
        weighting = fit["weighting"]
        if not isinstance(weighting, Mapping):
            return "fit.weighting must be a dictionary with a `type`, e.g. {type: EnergyBasedWeightingPolicy, ...}"
        if weighting.get("type") == "ExternalWeightingPolicy" or "filename_or_df" in weighting:
            return _EXTERNAL_WEIGHTS
        if weighting.get("type") not in WEIGHTING_TYPES:
            return f"fit.weighting.type must be one of {list(WEIGHTING_TYPES)}, got {weighting.get('type')!r}"
        message = unknown_keys(weighting, "fit.weighting", ALLOWED_KEYS["fit.weighting"])
        if message:
            return message
    if "repulsion" in fit:
        if fit["repulsion"] != "auto":
            return f"fit.repulsion can only be 'auto', got {fit['repulsion']!r}"
        if baseline is not None and baseline.get("type") == "zbl":
            return (
                "fit.repulsion 'auto' adds pacemaker's own ZBL core, but the data are residuals on a ZBL baseline: "
                "the repulsion would count twice; leave fit.repulsion out"
            )
    return None


def _check_backend_section(backend: Mapping[str, Any]) -> str | None:
    message = unknown_keys(backend, "backend", ALLOWED_KEYS["backend"])
    if message:
        return message
    evaluator = backend.get("evaluator", "tensorpot")
    if evaluator not in EVALUATORS:
        return f"backend.evaluator must be one of {list(EVALUATORS)}, got {evaluator!r}"
    for key in ("batch_size", "display_step"):
        if key in backend and not _is_positive_int(backend[key]):
            return f"backend.{key} must be a positive integer, got {backend[key]!r}"
    gpu_config = backend.get("gpu_config", {})
    message = _subsection(gpu_config, "backend.gpu_config", "{gpu_ind: 0, mem_limit: 0}")
    if message:
        return message
    for key, value in gpu_config.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"backend.gpu_config.{key} must be an integer, got {value!r}"
    return None


def _check_reference_energy(value: Any) -> str | None:
    from pyace.process_df import SINGLE_ATOM_ENERGY_DICT

    if _is_number(value):
        return None
    if isinstance(value, str):
        known = ["auto", *SINGLE_ATOM_ENERGY_DICT]
        return None if value in known else f"data.reference_energy must be a number, a dictionary or one of {known}"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key != "shift":
                try:
                    check_element_symbols([key], "data.reference_energy")
                except UnsafeNameError as error:
                    return f"{error}; give energies per element (eV), e.g. {{Cu: -0.25, shift: 0.0}}"
            if not _is_number(item):
                return f"data.reference_energy.{key} must be a number (eV), got {item!r}"
        return None
    return f"data.reference_energy must be a number, a dictionary of energies per element or 'auto', got {value!r}"


def validate_parameters(
    parameters: Mapping[str, Any],
    *,
    elements: Iterable[str] | None = None,
    has_test_set: bool = False,
    baseline: Mapping[str, Any] | None = None,
) -> str | None:
    """Return a message saying what to change, or None when the parameters make a valid ``input.yaml``.

    Every key must be one the plugin supports (:data:`ALLOWED_KEYS`); keys that make pacemaker read a file or
    import Python code are refused with what to do instead (:data:`REFUSED`)."""
    if not isinstance(parameters, Mapping):
        return "parameters must be a dictionary of input.yaml sections"
    unknown = sorted(str(key) for key in set(parameters) - set(ALLOWED_SECTIONS) if str(key) not in REFUSED)
    if unknown:
        return f"unknown section(s) {unknown} in parameters; allowed: {list(ALLOWED_SECTIONS)}"
    message = unknown_keys(parameters, "", ALLOWED_SECTIONS)
    if message:
        return message

    potential = parameters.get("potential")
    if not isinstance(potential, Mapping):
        return "parameters need a `potential` section (a dictionary with embeddings, bonds and functions)"
    missing = [key for key in REQUIRED_POTENTIAL_KEYS if key not in potential]
    if missing:
        return f"the `potential` section lacks {missing}"
    message = _check_potential_section(potential)
    if message:
        return message
    for block_name, block in potential["bonds"].items():
        if "rcut" in block and not (_is_number(block["rcut"]) and block["rcut"] > 0):
            return f"potential.bonds.{block_name}.rcut must be a positive number (Å), got {block['rcut']!r}"
    if max_bond_cutoff(potential) is None:
        return "no `rcut` in potential.bonds: give the radial cutoff in Å, e.g. bonds: {ALL: {rcut: 6.0, ...}}"
    if baseline is not None and baseline.get("type") == "zbl":
        for block_name, block in potential["bonds"].items():
            if block.get("inner_cutoff_type") == "zbl":
                return (
                    f"potential.bonds.{block_name}.inner_cutoff_type is 'zbl' but the data are residuals on a ZBL "
                    "baseline: pacemaker's own ZBL core would count the repulsion twice; leave inner_cutoff_type out"
                )
    if elements is not None and "elements" in potential:
        absent = sorted(set(elements) - set(potential["elements"]))
        if absent:
            return f"the training data contain {absent}, which potential.elements {list(potential['elements'])} lacks"

    data = parameters.get("data", {}) or {}
    if not isinstance(data, Mapping):
        return "the `data` section must be a dictionary"
    unknown = sorted(str(key) for key in set(data) - set(ALLOWED_DATA_KEYS))
    if unknown:
        return (
            f"data option(s) {unknown} are not accepted: the plugin writes the dataset file names itself; "
            f"allowed: {list(ALLOWED_DATA_KEYS)}"
        )
    if "test_size" in data:
        test_size = data["test_size"]
        if has_test_set:
            return "give either a `test_set` input or data.test_size, not both"
        if not (_is_number(test_size) and 0 < test_size < 1):
            return f"data.test_size must be a fraction in (0, 1), got {test_size!r}"
    if "reference_energy" in data:
        message = _check_reference_energy(data["reference_energy"])
        if message:
            return message

    fit = parameters.get("fit", {}) or {}
    if not isinstance(fit, Mapping):
        return "the `fit` section must be a dictionary"
    message = _check_fit_section(fit, baseline)
    if message:
        return message

    backend = parameters.get("backend", {}) or {}
    if not isinstance(backend, Mapping):
        return "the `backend` section must be a dictionary"
    message = _check_backend_section(backend)
    if message:
        return message

    if "seed" in parameters and (
        isinstance(parameters["seed"], bool) or not isinstance(parameters["seed"], numbers.Integral)
    ):
        return f"seed must be an integer, got {parameters['seed']!r}"
    if "cutoff" in parameters and not (_is_number(parameters["cutoff"]) and parameters["cutoff"] > 0):
        return f"cutoff must be a positive number (Å), got {parameters['cutoff']!r}"
    # Last, for what no key check above looked at: no value anywhere may name a file.
    return plain_values(dict(parameters), "parameters")


# A bond block other than the keywords names an element pair ("Cu Ni", "CuNi", or "Cu" for Cu-Cu), read with the
# same element pattern python-ace uses.
_ELEMENT_PATTERN = re.compile("[A-Z][a-z]?")


def _bond_block_pair(key: str) -> tuple[str, str] | None:
    """The element pair a ``potential.bonds`` key stands for, sorted; None for a keyword such as ``ALL``."""
    if key in BLOCK_KEYWORDS:
        return None
    symbols = _ELEMENT_PATTERN.findall(str(key))
    return tuple(sorted(symbols * 2 if len(symbols) == 1 else symbols))


def switch_ace_off_inside_zbl(potential: dict[str, Any], baseline: Mapping[str, Any]) -> None:
    """Switch ACE off, in ``potential`` (the ``potential`` section, with ``elements``; changed in place), where the
    ZBL ``baseline`` switches on: ``inner_cutoff_type: distance``, ``r_in`` = the ZBL ``cutoff``, ``delta_in`` =
    ``cutoff - inner_cutoff``, so ACE is fully off below ``inner_cutoff`` (pure ZBL) and fully on above ``cutoff``.

    A flat baseline (one window) goes into every bond block, as it always did. Per-pair windows go into one bond
    block per element pair of ``potential['elements']`` (``"Cu Ni": {...}``; python-ace applies a pair block over
    ``ALL``/``UNARY``/``BINARY`` and to both orders of the pair), merged into the user's own block for that pair if
    there is one. A pair for which the user already set ``r_in`` (in ``ALL``, ``UNARY``/``BINARY`` or the pair's
    block) is left alone. With per-pair windows, a pair whose ZBL climbs less than
    :data:`~aiida_mlip_trainer.physics.baselines.SHORT_RANGE_WALL` across its window (light elements) also gets
    pacemaker's ``core-repulsion`` in its block (:func:`~aiida_mlip_trainer.physics.baselines.core_repulsion` says
    why and how much), unless the user set ``core-repulsion`` for it; for such a pair ACE is switched off (and the
    core switched on) over the last 5 % of the window only, ``delta_in`` =
    :func:`~aiida_mlip_trainer.physics.baselines.core_switch_width` (0.05 × cutoff)."""
    from ..physics.baselines import core_repulsion, core_switch_width, pair_key, pair_parameters, validate_baseline

    spec = validate_baseline(baseline)
    bonds = potential["bonds"]
    if set(spec["params"]) >= {"inner_cutoff", "cutoff"}:  # the flat form: one window for every pair
        inner, outer = spec["params"]["inner_cutoff"], spec["params"]["cutoff"]
        for block in bonds.values():
            if "r_in" not in block:
                block.update(inner_cutoff_type="distance", r_in=outer, delta_in=outer - inner)
        return
    elements = sorted(potential["elements"])
    pair_blocks = {_bond_block_pair(key): key for key in bonds if _bond_block_pair(key) is not None}
    for index, a in enumerate(elements):
        for b in elements[index:]:
            own = pair_blocks.get((a, b))
            applicable = [bonds.get("ALL", {}), bonds.get("UNARY" if a == b else "BINARY", {})]
            if own is not None:
                applicable.append(bonds[own])
            if any("r_in" in block for block in applicable):
                continue
            window = pair_parameters(spec, a, b)
            if own is None:
                own = " ".join(pair_key(a, b).split("-"))
                bonds[own] = {}
            bonds[own].update(
                inner_cutoff_type="distance",
                r_in=window["cutoff"],
                delta_in=window["cutoff"] - window["inner_cutoff"],
            )
            if any("core-repulsion" in block for block in applicable):
                continue
            core = core_repulsion(a, b, window["inner_cutoff"], window["cutoff"])
            if core is not None:
                bonds[own].update({"delta_in": core_switch_width(window["cutoff"]), "core-repulsion": core})


def build_input_yaml(
    parameters: Mapping[str, Any],
    *,
    elements: Iterable[str],
    train_filename: str,
    test_filename: str | None = None,
    baseline: Mapping[str, Any] | None = None,
    previous_reference: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The ``input.yaml`` content as a dictionary: the user's sections plus the plugin's file names, the elements
    of the training data (when not given), a fixed seed (reproducible fits) and the top-level ``cutoff``
    (deprecated in python-ace 0.4 but required by older versions, so both are written).

    Reference energies (``data.reference_energy``, eV per atom of each element, subtracted from the labels before
    the fit and added back by the potential node's calculator and its ``.yace``): the user's when given; else, when
    the fit starts from a previous potential (``previous_reference`` is not None: fine-tuning, a continued fit),
    that potential's own, so that its energies keep their meaning (none if it had none); else ``auto`` (pacemaker's
    least-squares E0 per element), without which DFT total energies (about -100 eV/atom and more) leave the ACE
    model, which has no constant term, a constant it cannot fit.

    On a ZBL ``baseline`` the ACE part is switched off over the same window in which the ZBL repulsion is
    switched on (``inner_cutoff_type: distance``, ``r_in`` = the ZBL outer cutoff, ``delta_in`` = its width),
    so that below the inner cutoff the potential is pure ZBL, where there are never data: with one window (the flat
    form) in every bond block, with per-pair windows in one bond block per element pair (see
    :func:`switch_ace_off_inside_zbl`). A bond block that sets ``r_in`` itself is left alone.

    What comes from nodes is checked again here, where it is written (a node may come from an archive): the
    parameters against the allow-list, the elements to be chemical symbols, the baseline to be a valid one."""
    from ..physics.baselines import validate_baseline

    message = validate_parameters(parameters, baseline=baseline)
    if message:
        raise ValueError(message)
    elements = check_element_symbols(elements, "the elements of the training data")
    config = copy.deepcopy(dict(parameters))
    potential = config["potential"]
    if baseline is not None:
        baseline = validate_baseline(baseline)
    potential.setdefault("elements", sorted(elements))
    if baseline is not None and baseline.get("type") == "zbl":
        switch_ace_off_inside_zbl(potential, baseline)
    config.setdefault("cutoff", max_bond_cutoff(potential))
    config.setdefault("seed", DEFAULT_SEED)
    data = dict(config.get("data") or {})
    if "reference_energy" not in data:
        if previous_reference is None:
            data["reference_energy"] = "auto"
        elif previous_reference:
            data["reference_energy"] = {element: float(value) for element, value in previous_reference.items()}
    data["filename"] = train_filename
    if test_filename is not None:
        data["test_filename"] = test_filename
    config["data"] = data
    backend = dict(config.get("backend") or {})
    backend.setdefault("evaluator", "tensorpot")
    config["backend"] = backend
    config.setdefault("fit", {})
    return config
