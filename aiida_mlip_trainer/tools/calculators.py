"""ASE calculators by name: the entry-point group ``mlip_trainer.ase_calculators``.

Each entry point is a factory: a callable that takes JSON keyword arguments and returns an ASE calculator. A
calculation stores only the factory's *name* and its keyword arguments (a JSON dict); the script on the computer
looks the name up among the installed entry points. So no import path, no file name and no command read from a node
ever reaches Python's import system or a shell. Factories must not accept paths or commands; the ones shipped here
take numbers and booleans only:

``emt``
    ASE's EMT (Cu, Ag, Au, Ni, Pd, Pt, Al, and H, C, N, O for testing); keyword ``fixed_cutoff`` (a boolean,
    default True).
``lj``
    ASE's Lennard-Jones; keywords ``sigma`` (Å, in (0, 10]), ``epsilon`` (eV, in [0, 100]), ``rc`` (Å, default
    3 sigma; at most 20 Å, whether given or derived), ``ro`` (Å, in [0, rc)), ``smooth`` (a boolean, default False).

The keywords are typed and bounded per calculator before any job (and again in the job): a factory may carry a
``check_parameters(parameters)`` attribute that raises ValueError naming the key, as the two shipped here do. The
bounds keep a job finite: ASE's Lennard-Jones with ``rc=1e6`` builds a neighbour list over every periodic image
within a million Å and never returns.

Other packages add calculators by registering a factory in the group, in their own ``pyproject.toml``::

    [project.entry-points."mlip_trainer.ase_calculators"]
    my_model = "my_package.calculators:my_model"
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from importlib.metadata import entry_points

__all__ = (
    "DEFAULT_MAX_ATOMS",
    "GROUP",
    "MAX_LJ_CUTOFF",
    "calculator_names",
    "check_calculator",
    "emt",
    "lennard_jones",
    "make_calculator",
)

GROUP = "mlip_trainer.ase_calculators"
# Atoms per structure an oracle job labels unless the user raises it (AseOracleCalculation's `max_atoms` input).
DEFAULT_MAX_ATOMS = 2000
# Å: the longest pair cutoff a shipped calculator accepts (the same ceiling as a baseline's cutoff).
MAX_LJ_CUTOFF = 20.0


def _boolean(name: str, parameters: dict, key: str) -> None:
    if key in parameters and not isinstance(parameters[key], bool):
        raise ValueError(f"calculator {name!r}: {key!r} must be true or false, got {parameters[key]!r}")


def _number(name: str, parameters: dict, key: str, low: float, high: float, *, open_below: bool) -> float | None:
    """The number under ``key`` (None when absent or null), refused outside (low, high] or [low, high]."""
    value = parameters.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"calculator {name!r}: {key!r} must be a finite number, got {value!r}")
    if value < low or (open_below and value == low) or value > high:
        interval = f"{'(' if open_below else '['}{low:g}, {high:g}]"
        raise ValueError(f"calculator {name!r}: {key!r} must lie in {interval}, got {value!r}")
    return float(value)


def emt(fixed_cutoff: bool = True):
    """ASE's effective-medium theory potential."""
    from ase.calculators.emt import EMT

    return EMT(fixed_cutoff=bool(fixed_cutoff))


def _check_emt(parameters: dict) -> None:
    _boolean("emt", parameters, "fixed_cutoff")


emt.check_parameters = _check_emt


def lennard_jones(
    sigma: float = 1.0, epsilon: float = 1.0, rc: float | None = None, ro: float | None = None, smooth: bool = False
):
    """ASE's Lennard-Jones pair potential (``rc`` defaults to 3 ``sigma``)."""
    from ase.calculators.lj import LennardJones

    return LennardJones(sigma=sigma, epsilon=epsilon, rc=rc, ro=ro, smooth=bool(smooth))


def _check_lennard_jones(parameters: dict) -> None:
    sigma = _number("lj", parameters, "sigma", 0.0, 10.0, open_below=True)
    _number("lj", parameters, "epsilon", 0.0, 100.0, open_below=False)
    rc = _number("lj", parameters, "rc", 0.0, MAX_LJ_CUTOFF, open_below=True)
    if rc is None and 3 * (1.0 if sigma is None else sigma) > MAX_LJ_CUTOFF:
        raise ValueError(
            f"calculator 'lj': the default 'rc' (3 sigma = {3 * sigma:g} Å) is above {MAX_LJ_CUTOFF:g} Å: give 'rc'"
        )
    ro = _number("lj", parameters, "ro", 0.0, MAX_LJ_CUTOFF, open_below=False)
    if ro is not None and ro >= (rc if rc is not None else 3 * (1.0 if sigma is None else sigma)):
        raise ValueError(f"calculator 'lj': 'ro' ({ro:g} Å) must be below 'rc'")
    _boolean("lj", parameters, "smooth")


lennard_jones.check_parameters = _check_lennard_jones


def calculator_names() -> list[str]:
    """The calculator names installed on this computer."""
    return sorted({entry.name for entry in entry_points(group=GROUP)})


def _factory(name: str) -> Callable:
    matches = [entry for entry in entry_points(group=GROUP) if entry.name == name]
    if not matches:
        raise ValueError(f"unknown ASE calculator {name!r}: installed are {calculator_names()} (group {GROUP})")
    factory = matches[0].load()
    if not callable(factory):
        raise ValueError(f"the entry point {name!r} of {GROUP} is not callable")
    return factory


def check_calculator(name: str, parameters: dict) -> Callable:
    """The factory of ``name``, once ``parameters`` are known to be JSON values that fit its signature; ValueError
    with a one-line message otherwise."""
    if not isinstance(parameters, dict):
        raise ValueError(f"the calculator parameters must be a dict, got {type(parameters).__name__}")
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the calculator parameters must be plain JSON values: {exc}") from exc
    factory = _factory(name)
    try:
        inspect.signature(factory).bind(**parameters)
    except TypeError as exc:
        accepted = list(inspect.signature(factory).parameters)
        raise ValueError(f"calculator {name!r}: {exc}; it accepts {accepted}") from exc
    # Types and bounds per calculator: a value of the wrong kind or size fails here, not in the job.
    check = getattr(factory, "check_parameters", None)
    if callable(check):
        try:
            check(parameters)
        except ValueError:
            raise
        except Exception as exc:  # a third-party check must not crash a validator
            raise ValueError(f"calculator {name!r}: its parameter check failed: {exc!r}") from exc
    return factory


def make_calculator(name: str, parameters: dict | None = None):
    """An ASE calculator from its registered name and JSON keyword arguments."""
    parameters = parameters or {}
    return check_calculator(name, parameters)(**parameters)
