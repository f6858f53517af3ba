"""The one writer of pacemaker's ``input.yaml``, and the checks on the parameters that go into it.

A user gives the sections of ``input.yaml`` as a dictionary (``potential``, ``fit``, ``backend``, ``data``,
``cutoff``, ``seed``); the plugin owns everything that names a file, so no path from the user's disk ever reaches
a configuration that the provenance graph records.
"""

from __future__ import annotations

import copy
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ("DEFAULT_SEED", "build_input_yaml", "switch_ace_off_inside_zbl", "validate_parameters")

ALLOWED_SECTIONS = ("cutoff", "seed", "potential", "fit", "backend", "data")
# Data options the user may set; `filename`, `test_filename` and `datapath` are the plugin's to write.
ALLOWED_DATA_KEYS = ("test_size", "reference_energy")
REQUIRED_POTENTIAL_KEYS = ("embeddings", "bonds", "functions")
EVALUATORS = ("tensorpot", "pyace")
DEFAULT_SEED = 42


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def max_bond_cutoff(potential: Mapping[str, Any]) -> float | None:
    """The largest ``rcut`` over the bond blocks (what python-ace uses as the neighbour-list cutoff)."""
    cutoffs = [
        float(block["rcut"])
        for block in potential.get("bonds", {}).values()
        if isinstance(block, Mapping) and "rcut" in block
    ]
    return max(cutoffs) if cutoffs else None


def validate_parameters(
    parameters: Mapping[str, Any],
    *,
    elements: Iterable[str] | None = None,
    has_test_set: bool = False,
    baseline: Mapping[str, Any] | None = None,
) -> str | None:
    """Return a message saying what to change, or None when the parameters make a valid ``input.yaml``."""
    unknown = sorted(set(parameters) - set(ALLOWED_SECTIONS))
    if unknown:
        return f"unknown section(s) {unknown} in parameters; allowed: {list(ALLOWED_SECTIONS)}"

    potential = parameters.get("potential")
    if not isinstance(potential, Mapping):
        return "parameters need a `potential` section (a dictionary with embeddings, bonds and functions)"
    missing = [key for key in REQUIRED_POTENTIAL_KEYS if key not in potential]
    if missing:
        return f"the `potential` section lacks {missing}"
    for block_name, block in potential["bonds"].items():
        if not isinstance(block, Mapping):
            return f"potential.bonds.{block_name} must be a dictionary"
        if "rcut" in block and not (isinstance(block["rcut"], numbers.Real) and block["rcut"] > 0):
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
    unknown = sorted(set(data) - set(ALLOWED_DATA_KEYS))
    if unknown:
        return (
            f"data option(s) {unknown} are not accepted: the plugin writes the dataset file names itself; "
            f"allowed: {list(ALLOWED_DATA_KEYS)}"
        )
    if "test_size" in data:
        test_size = data["test_size"]
        if has_test_set:
            return "give either a `test_set` input or data.test_size, not both"
        if not (isinstance(test_size, numbers.Real) and 0 < test_size < 1):
            return f"data.test_size must be a fraction in (0, 1), got {test_size!r}"

    fit = parameters.get("fit", {}) or {}
    if not isinstance(fit, Mapping):
        return "the `fit` section must be a dictionary"
    for key in ("maxiter", "fit_cycles"):
        if key in fit and not _is_positive_int(fit[key]):
            return f"fit.{key} must be a positive integer, got {fit[key]!r}"

    backend = parameters.get("backend", {}) or {}
    if not isinstance(backend, Mapping):
        return "the `backend` section must be a dictionary"
    evaluator = backend.get("evaluator", "tensorpot")
    if evaluator not in EVALUATORS:
        return f"backend.evaluator must be one of {list(EVALUATORS)}, got {evaluator!r}"
    for key in ("batch_size", "display_step"):
        if key in backend and not _is_positive_int(backend[key]):
            return f"backend.{key} must be a positive integer, got {backend[key]!r}"

    if "seed" in parameters and not isinstance(parameters["seed"], numbers.Integral):
        return f"seed must be an integer, got {parameters['seed']!r}"
    return None


# pacemaker's bond-block keywords; any other key names an element pair ("Cu Ni", "CuNi", or "Cu" for Cu-Cu), read
# with the same element pattern python-ace uses.
BOND_KEYWORDS = ("ALL", "UNARY", "BINARY", "TERNARY", "QUATERNARY", "QUINARY")
_ELEMENT_PATTERN = re.compile("[A-Z][a-z]?")


def _bond_block_pair(key: str) -> tuple[str, str] | None:
    """The element pair a ``potential.bonds`` key stands for, sorted; None for a keyword such as ``ALL``."""
    if key in BOND_KEYWORDS:
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
    block) is left alone."""
    from .baselines import pair_key, pair_parameters, validate_baseline

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


def build_input_yaml(
    parameters: Mapping[str, Any],
    *,
    elements: Iterable[str],
    train_filename: str,
    test_filename: str | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``input.yaml`` content as a dictionary: the user's sections plus the plugin's file names, the elements
    of the training data (when not given), a fixed seed (reproducible fits) and the top-level ``cutoff``
    (deprecated in python-ace 0.4 but required by older versions, so both are written).

    On a ZBL ``baseline`` the ACE part is switched off over the same window in which the ZBL repulsion is
    switched on (``inner_cutoff_type: distance``, ``r_in`` = the ZBL outer cutoff, ``delta_in`` = its width),
    so that below the inner cutoff the potential is pure ZBL, where there are never data: with one window (the flat
    form) in every bond block, with per-pair windows in one bond block per element pair (see
    :func:`switch_ace_off_inside_zbl`)."""
    config = copy.deepcopy(dict(parameters))
    potential = config["potential"]
    potential.setdefault("elements", sorted(elements))
    if baseline is not None and baseline.get("type") == "zbl":
        switch_ace_off_inside_zbl(potential, baseline)
    config.setdefault("cutoff", max_bond_cutoff(potential))
    config.setdefault("seed", DEFAULT_SEED)
    data = dict(config.get("data") or {})
    data["filename"] = train_filename
    if test_filename is not None:
        data["test_filename"] = test_filename
    config["data"] = data
    backend = dict(config.get("backend") or {})
    backend.setdefault("evaluator", "tensorpot")
    config["backend"] = backend
    config.setdefault("fit", {})
    return config
