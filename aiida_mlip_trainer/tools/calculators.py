"""ASE calculators by name: the entry-point group ``mlip_trainer.ase_calculators``.

Each entry point is a factory: a callable that takes JSON keyword arguments and returns an ASE calculator. A
calculation stores only the factory's *name* and its keyword arguments (a JSON dict); the script on the computer
looks the name up among the installed entry points. So no import path, no file name and no command read from a node
ever reaches Python's import system or a shell. Factories must not accept paths or commands; the ones shipped here
take numbers and booleans only:

``emt``
    ASE's EMT (Cu, Ag, Au, Ni, Pd, Pt, Al, and H, C, N, O for testing); keyword ``fixed_cutoff`` (default True).
``lj``
    ASE's Lennard-Jones; keywords ``sigma`` (Å), ``epsilon`` (eV), ``rc`` (Å, default 3 sigma), ``ro``,
    ``smooth`` (default False).

Other packages add calculators by registering a factory in the group, in their own ``pyproject.toml``::

    [project.entry-points."mlip_trainer.ase_calculators"]
    my_model = "my_package.calculators:my_model"
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from importlib.metadata import entry_points

__all__ = ("GROUP", "calculator_names", "check_calculator", "emt", "lennard_jones", "make_calculator")

GROUP = "mlip_trainer.ase_calculators"


def emt(fixed_cutoff: bool = True):
    """ASE's effective-medium theory potential."""
    from ase.calculators.emt import EMT

    return EMT(fixed_cutoff=bool(fixed_cutoff))


def lennard_jones(
    sigma: float = 1.0, epsilon: float = 1.0, rc: float | None = None, ro: float | None = None, smooth: bool = False
):
    """ASE's Lennard-Jones pair potential (``rc`` defaults to 3 ``sigma``)."""
    from ase.calculators.lj import LennardJones

    return LennardJones(sigma=sigma, epsilon=epsilon, rc=rc, ro=ro, smooth=bool(smooth))


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
    return factory


def make_calculator(name: str, parameters: dict | None = None):
    """An ASE calculator from its registered name and JSON keyword arguments."""
    parameters = parameters or {}
    return check_calculator(name, parameters)(**parameters)
