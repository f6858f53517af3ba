"""Write a potential node to files for LAMMPS or ASE, baseline and reference energies included."""

from __future__ import annotations

import json
import os
import pathlib
import uuid

from .data.pace_potential import PacePotentialData
from .names import check_file_stem

__all__ = ("export_potential",)


def export_potential(
    potential: PacePotentialData, directory: str | os.PathLike, *, target: str = "lammps", name: str = "potential"
) -> list[pathlib.Path]:
    """Write ``potential`` into ``directory`` and return the written paths.

    ``lammps``: ``<name>.yace`` (pair_style pace), ``<name>.asi`` when there is an active set, and
    ``<name>.lammps`` with the exact ``pair_style``/``pair_coeff`` lines (``hybrid/overlay`` with the baseline's
    own LAMMPS style when the potential was fitted on a baseline). ``ase``: ``<name>.yaml``, ``<name>.asi`` and
    ``<name>_calculator.py``, a snippet that builds the same calculator as ``PacePotentialData.get_calculator()``.

    ``name`` must be a plain file stem (letters, digits, ``_``, ``-``, ``.``): ``directory`` is the only directory
    written into. What is read from the node (element symbols, baseline, files) is checked first: a node from an
    archive can carry anything, and these lines are run by LAMMPS and Python.
    """
    name = check_file_stem(name, "--name")
    if target not in ("lammps", "ase"):
        raise ValueError(f"unknown export target {target!r}: use 'lammps' or 'ase'")
    elements, baseline = potential.elements, potential.baseline  # checked: symbols, and a valid baseline
    identifier = str(uuid.UUID(potential.uuid))  # a UUID and nothing else, in a comment or a docstring
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {suffix: path for suffix, path in potential.write_files(directory, stem=name).items()}
    if target == "lammps":
        if "yace" not in files:
            raise ValueError(
                "this potential has no .yace: convert it with `pace_yaml2yace` (TrainingWorkChain does) first"
            )
        files.pop("yaml").unlink()
        lines = potential.lammps_commands(files["yace"].name)
        script = directory / f"{name}.lammps"
        header = [
            f"# ACE potential {identifier} (elements {' '.join(elements)}; atom types in this order)",
            f"# baseline: {json.dumps(baseline)}" if baseline else "# no baseline",
        ]
        script.write_text("\n".join(header + lines) + "\n")
        return sorted([*files.values(), script])
    if target == "ase":
        files.pop("yace", None) and (directory / f"{name}.yace").unlink()
        snippet = directory / f"{name}_calculator.py"
        body = [
            f'"""ASE calculator of ACE potential {identifier}: ACE from {name}.yaml'
            + (" plus its baseline." if baseline else ".")
            + '"""',
            "from pyace import PyACECalculator",
            "",
            f'calculator = PyACECalculator("{name}.yaml")',
        ]
        if "asi" in files:
            body.append(f'calculator.set_active_set("{name}.asi")  # per-atom extrapolation grade: results["gamma"]')
        parts = []
        if baseline:
            # A validated baseline holds only known keys, element symbols and finite numbers: its repr is a literal.
            body += [
                "",
                "from aiida_mlip_trainer.physics.baselines import baseline_calculator",
            ]
            parts.append(f"baseline_calculator({baseline!r})")
        reference = potential.reference_energy  # element symbols -> finite floats (checked): a literal too
        if reference:
            body += [
                "# the energy per atom the fit subtracted from the labels (pacemaker's reference_energy), added back",
                "from aiida_mlip_trainer.physics.reference_energy import ReferenceEnergyCalculator",
            ]
            parts.append(f"ReferenceEnergyCalculator({reference!r})")
        if parts:
            body += [
                '# the sum keeps ACE\'s per-atom extrapolation grade: calculator.results["gamma"]',
                "from aiida_mlip_trainer.physics.ace_sum import AceSumCalculator",
                "",
                f"calculator = AceSumCalculator(calculator, [{', '.join(parts)}])",
            ]
        snippet.write_text("\n".join(body) + "\n")
        return sorted([*files.values(), snippet])
    raise AssertionError("unreachable: the target was checked above")  # pragma: no cover
