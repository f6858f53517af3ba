"""The one writer of gracemaker's ``input.yaml`` (tensorpotential 0.6.2.1, GRACE), and the checks on what goes in.

A user gives the sections of gracemaker's ``input.yaml`` as a dictionary (``cutoff``, ``seed``, ``potential``,
``fit``, ``data``). Only the keys listed in :data:`ALLOWED_KEYS` are accepted (what ``tensorpotential/cli`` reads:
``gracemaker.py``, ``prepare.py`` ``build_loss_function``, ``train.py``, ``data.py``, the FS preset of
``potentials/presets.py``), less everything that names a file: the plugin writes the datasets and the model to
start from into the input folder and names them itself. The model is the FS preset (GRACE-FS, the ACE-like
single-layer model that exports to an FS YAML python-ace evaluates and that has an active set); the 1- and
2-layer presets need their own uncertainty and are refused.

Stress: the datasets hold ASE's stress (sign of ``atoms.get_stress()``, eV/Å³), so ``data.stress_units`` is the
plugin's to write (``eV/A3``). The loss is ``fit.loss``: ``energy``, ``forces`` and ``stress`` terms, each
``{weight: W, type: square|huber|...}``; a number is taken as the weight of a square loss. A structure that is not
periodic gets stress weight 0 from gracemaker itself.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from ..names import check_element_symbols
from .pacemaker_input import plain_values, unknown_keys

__all__ = (
    "ADAM_DEFAULTS",
    "ALLOWED_KEYS",
    "DEFAULT_FS_KWARGS",
    "DEFAULT_LOSS",
    "LOSS_TERMS",
    "build_grace_input",
    "stress_weight",
    "validate_grace_parameters",
)

PRESETS = ("FS",)
LOSS_TERMS = ("energy", "forces", "stress")
LOSS_TYPES = {
    "energy": ("square", "huber", "mae", "piecewise_linear"),
    "forces": ("square", "huber", "piecewise_linear"),
    "stress": ("square", "huber", "mae", "piecewise_linear"),
}
OPTIMIZERS = ("Adam", "L-BFGS-B", "BFGS")
SCHEDULERS = ("cosine_decay", "reduce_on_plateau", "exponential_decay", "linear_decay")
# The model of a small fit: a few hundred parameters (the FS preset's own defaults have tens of thousands).
DEFAULT_FS_KWARGS = {
    "lmax": [3, 3],
    "n_rad_max": [4, 3],
    "max_order": 2,
    "n_rad_base": 6,
    "embedding_size": 4,
    "fs_parameters": [[1.0, 1.0], [1.0, 0.5]],
}
# Weights of the square losses: energy per atom (eV), force components (eV/Å), stress components (eV/Å³, hence the
# large weight: a stress of 1 GPa is 0.006 eV/Å³). Energy and forces as gracemaker's own template (16, 32): with
# energy weight 1 the FS model let its energy drift by 0.3 eV/atom while it fitted the stress (EMT copper).
DEFAULT_LOSS = {
    "energy": {"weight": 16.0, "type": "square"},
    "forces": {"weight": 32.0, "type": "square"},
    "stress": {"weight": 1000.0, "type": "square"},
}
# The fit: BFGS (scipy's, the whole training set each iteration; `maxiter` counts iterations), as gracemaker's own
# wizard recommends for an FS model from scratch. On 80 sheared EMT copper cells it fitted E 4.5x, F 2.9x and the
# stress 5x better than Adam at 1.2-1.8x its wall time (benchmarks/grace_stress.py, docs/benchmarks.md).
DEFAULT_FIT = {
    "maxiter": 50,
    "optimizer": "BFGS",
    "batch_size": 8,
    "jit_compile": False,
    "checkpoint_freq": 5,
}
# Adam's learning rate and schedule, used only when the user chooses Adam (`maxiter` then counts epochs); given to
# BFGS they would reach scipy's minimize as unknown options.
ADAM_DEFAULTS = {
    "opt_params": {"learning_rate": 0.01, "amsgrad": True},
    "scheduler": "cosine_decay",
    "scheduler_params": {"minimum_learning_rate": 0.001},
}
DEFAULT_SEED = 1
STRESS_UNITS = "eV/A3"

ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": ("cutoff", "seed", "potential", "fit", "data"),
    "potential": ("preset", "kwargs", "shift", "scale", "float_dtype"),
    "potential.kwargs": (
        "lmax",
        "Lmax",
        "max_sum_l",
        "lmax_hist",
        "basis_type",
        "rad_base_normalized",
        "n_rad_base",
        "n_rad_max",
        "embedding_size",
        "max_order",
        "crad_init",
        "func_init",
        "chem_init",
        "fs_parameters",
        "normalize_prod",
        "simplify_prod",
    ),
    "fit": (
        "loss",
        "maxiter",
        "optimizer",
        "opt_params",
        "scheduler",
        "scheduler_params",
        "batch_size",
        "test_batch_size",
        "jit_compile",
        "checkpoint_freq",
        "eval_init_stats",
        "train_shuffle",
        "reset_epoch_and_step",
        "reset_optimizer",
    ),
    "fit.loss": LOSS_TERMS,
    "data": ("test_size", "reference_energy"),
}


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _loss_term(term: str, value: Any) -> dict[str, Any]:
    """``{weight, type}`` of one loss term given as a number (the weight of a square loss) or a dictionary."""
    if isinstance(value, Mapping):
        return {"type": "square", **value}
    return {"weight": value, "type": "square"}


def _check_loss(loss: Any) -> str | None:
    if not isinstance(loss, Mapping):
        return "fit.loss must be a dictionary of energy, forces and stress terms, e.g. {stress: {weight: 1000}}"
    message = unknown_keys(loss, "fit.loss", ALLOWED_KEYS["fit.loss"])
    if message:
        return message
    for term, value in loss.items():
        item = _loss_term(term, value)
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or weight < 0:
            return f"fit.loss.{term}.weight must be a number >= 0, got {weight!r}"
        if item["type"] not in LOSS_TYPES[term]:
            return f"fit.loss.{term}.type must be one of {list(LOSS_TYPES[term])}, got {item['type']!r}"
    return None


def _check_reference_energy(value: Any) -> str | None:
    """gracemaker's ``data.reference_energy``: 0 (none), ``auto`` (least squares per element) or eV per element."""
    if isinstance(value, Mapping):
        try:
            check_element_symbols(list(value), "data.reference_energy")
        except ValueError as error:
            return f"{error}; give energies per element (eV), e.g. {{Cu: -0.25}}"
        bad = [key for key, item in value.items() if isinstance(item, bool) or not isinstance(item, numbers.Real)]
        return f"data.reference_energy.{bad[0]} must be a number (eV)" if bad else None
    if value == 0 or value == "auto":
        return None
    return f"data.reference_energy must be 0, 'auto' or a dictionary of energies per element (eV), got {value!r}"


def _check_fit(fit: Mapping[str, Any]) -> str | None:
    if "loss" in fit and (message := _check_loss(fit["loss"])):
        return message
    for key in ("maxiter", "batch_size", "test_batch_size", "checkpoint_freq"):
        if key in fit and not _is_positive_int(fit[key]):
            return f"fit.{key} must be a positive integer, got {fit[key]!r}"
    if "optimizer" in fit and fit["optimizer"] not in OPTIMIZERS:
        return f"fit.optimizer must be one of {list(OPTIMIZERS)}, got {fit['optimizer']!r}"
    if "scheduler" in fit and fit["scheduler"] not in SCHEDULERS:
        return f"fit.scheduler must be one of {list(SCHEDULERS)}, got {fit['scheduler']!r}"
    for key in ("opt_params", "scheduler_params"):
        if key in fit and not isinstance(fit[key], Mapping):
            return f"fit.{key} must be a dictionary, got {fit[key]!r}"
    for key in ("jit_compile", "eval_init_stats", "train_shuffle", "reset_epoch_and_step", "reset_optimizer"):
        if key in fit and not isinstance(fit[key], bool):
            return f"fit.{key} must be true or false, got {fit[key]!r}"
    return None


def validate_grace_parameters(parameters: Mapping[str, Any], *, has_stress: bool | None = None) -> str | None:
    """A message saying what to change, or None when ``parameters`` are valid sections of gracemaker's input.

    ``has_stress`` False (a training set without stress labels) refuses a stress weight above 0."""
    if not isinstance(parameters, Mapping):
        return f"the parameters must be a dictionary of input.yaml sections, got {type(parameters).__name__}"
    message = unknown_keys(parameters, "", ALLOWED_KEYS[""]) or plain_values(dict(parameters), "parameters")
    if message:
        return message
    for section in ("potential", "fit", "data"):
        value = parameters.get(section, {})
        if not isinstance(value, Mapping):
            return f"{section} must be a dictionary"
        if message := unknown_keys(value, section, ALLOWED_KEYS[section]):
            return message
    potential, fit, data = (parameters.get(section, {}) for section in ("potential", "fit", "data"))
    if "cutoff" in parameters and not _is_positive_number(parameters["cutoff"]):
        return f"cutoff must be a positive number (Å), got {parameters['cutoff']!r}"
    if "seed" in parameters and not _is_positive_int(parameters["seed"]):
        return f"seed must be a positive integer (gracemaker writes into seed/<seed>/), got {parameters['seed']!r}"
    preset = potential.get("preset", PRESETS[0])
    if preset not in PRESETS:
        return (
            f"potential.preset {preset!r} is not supported: only {list(PRESETS)} (GRACE-FS: exported to an FS YAML "
            "with an active set); the 1- and 2-layer GRACE models need their own uncertainty"
        )
    kwargs = potential.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        return "potential.kwargs must be a dictionary of the FS preset's settings"
    if message := unknown_keys(kwargs, "potential.kwargs", ALLOWED_KEYS["potential.kwargs"]):
        return message
    if message := _check_fit(fit):
        return message
    if "reference_energy" in data and (message := _check_reference_energy(data["reference_energy"])):
        return message
    if has_stress is False and stress_weight(parameters) > 0:
        return (
            "the training set has no stress labels but fit.loss.stress.weight is above 0: give structures with "
            "stress, or set the stress weight to 0"
        )
    return None


def stress_weight(parameters: Mapping[str, Any]) -> float:
    """The weight of the stress term of the loss the fit will use (the default's when the user gave no loss)."""
    loss = (parameters.get("fit") or {}).get("loss")
    if loss is None:
        return float(DEFAULT_LOSS["stress"]["weight"])
    if "stress" not in loss:
        return 0.0
    return float(_loss_term("stress", loss["stress"])["weight"])


def build_grace_input(
    parameters: Mapping[str, Any],
    *,
    elements: Iterable[str],
    train_filename: str,
    test_filename: str | None = None,
    has_stress: bool = True,
    reference_energy: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The ``input.yaml`` content as a dictionary: the user's sections over the plugin's defaults (the FS preset with
    :data:`DEFAULT_FS_KWARGS`, the loss :data:`DEFAULT_LOSS`, BFGS (Adam with :data:`ADAM_DEFAULTS` when chosen),
    ``reference_energy``: the user's, else ``reference_energy`` (E0 per element; ``{}`` writes 0) when given, else
    ``auto``), the elements of the training data, the plugin's file names and stress units.

    A stress term of weight 0 is left out of the loss (gracemaker then needs no stress column); the defaults'
    stress term is dropped for a training set without stress. What comes from nodes is checked again here."""
    message = validate_grace_parameters(parameters)
    if message:
        raise ValueError(message)
    elements = check_element_symbols(elements, "the elements of the training data")
    config = copy.deepcopy(dict(parameters))
    config.setdefault("seed", DEFAULT_SEED)
    config.setdefault("cutoff", 5.0)

    potential = dict(config.get("potential") or {})
    potential.setdefault("preset", PRESETS[0])
    potential["kwargs"] = dict(potential.get("kwargs") or DEFAULT_FS_KWARGS)
    potential["elements"] = sorted(elements)
    config["potential"] = potential

    user_fit = dict(config.get("fit") or {})
    defaults = copy.deepcopy(DEFAULT_FIT)
    if user_fit.get("optimizer", defaults["optimizer"]) == "Adam":
        defaults.update(copy.deepcopy(ADAM_DEFAULTS))
    fit = {**defaults, **user_fit}
    user_loss = fit.get("loss")
    loss = {
        term: _loss_term(term, value)
        for term, value in (copy.deepcopy(DEFAULT_LOSS) if user_loss is None else user_loss).items()
    }
    if not has_stress and user_loss is None:
        loss.pop("stress")
    if "stress" in loss and not loss["stress"]["weight"]:
        loss.pop("stress")
    fit["loss"] = loss
    fit["progressbar"] = False
    config["fit"] = fit

    data = dict(config.get("data") or {})
    if data.get("reference_energy", "auto") == "auto" and reference_energy is not None:
        # Written out, not `auto`: gracemaker's FS export leaves its E0 out, so the plugin must know them.
        data["reference_energy"] = {element: float(value) for element, value in reference_energy.items()} or 0
    data.setdefault("reference_energy", "auto")
    data["filename"] = train_filename
    if test_filename is not None:
        data["test_filename"] = test_filename
    data["stress_units"] = STRESS_UNITS
    config["data"] = data
    return config
