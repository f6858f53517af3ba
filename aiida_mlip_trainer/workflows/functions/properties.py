"""The property table of a potential next to its reference, and its plot: a calcfunction, so that every value in
the table links back to the jobs that computed it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.engine import calcfunction

from ...data.training_set import TrainingSetData
from ...physics.property_geometries import plan_names, properties_from_labels, property_rows
from .potential import png_file

__all__ = ("properties_met", "property_table", "reference_properties")


def reference_properties(plan: Mapping, geometries: TrainingSetData, labelled: TrainingSetData, indices: list[int]):
    """``(properties, missing)``: every property of ``plan`` that the oracle's labels allow, recomputed from them on
    the same geometries (``labelled`` holds the labels of ``geometries[indices]``), and the properties left out
    because a geometry of theirs got no label."""
    names = [str(name) for name in geometries.get_arrays()["names"]]
    by_name = {names[index]: atoms for index, atoms in zip(indices, labelled.to_atoms(), strict=True)}
    kept, missing = {key: value for key, value in plan.items() if key in ("settings", "bulk")}, []
    for key in ("eos", "elastic", "vacancy", "surface", "phonons"):
        if key not in plan:
            continue
        needed = set(plan_names({"bulk": plan["bulk"], key: plan[key]}))
        if needed <= set(by_name):
            kept[key] = plan[key]
        else:
            missing.append(key)
    if "bulk" not in by_name:
        return None, [key for key in ("eos", "elastic", "vacancy", "surface", "phonons") if key in plan]
    return properties_from_labels(kept, by_name), missing


def _figure(potential: Mapping, reference: Mapping | None, relaxed: Mapping | None, rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (eos_axis, error_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, source, style in (("potential", potential, "o-"), ("oracle, same geometries", reference, "s--"),
                                 ("oracle, own relaxation", relaxed, "^:")):  # fmt: skip
        if source is not None and "eos" in source:
            eos_axis.plot(source["eos"]["volumes"], source["eos"]["energies"], style, label=label)
    eos_axis.set_xlabel("volume (Å³/atom)")
    eos_axis.set_ylabel("energy (eV/atom)")
    eos_axis.set_title("equation of state")
    if eos_axis.lines:
        eos_axis.legend()
    names, errors = [], []
    for row in rows:
        error = row.get("reference_relative_error", row.get("reference_relaxed_relative_error"))
        if error is not None:
            names.append(row["property"])
            errors.append(100 * error)
    if names:
        error_axis.barh(names, errors, color=["tab:red" if abs(e) > 10 else "tab:blue" for e in errors])
        error_axis.axvline(0, color="black", linewidth=0.8)
        error_axis.invert_yaxis()
    else:
        error_axis.text(0.5, 0.5, "no reference: give an oracle", ha="center", va="center")
    error_axis.set_xlabel("(potential − reference) / |reference| (%)")
    error_axis.set_title("relative errors")
    return figure


@calcfunction
def property_table(
    properties: orm.Dict,
    plan: orm.Dict,
    geometries: TrainingSetData | None = None,
    labelled: TrainingSetData | None = None,
    indices: orm.List | None = None,
    relaxed: orm.Dict | None = None,
) -> dict:
    """The potential's ``properties`` next to the oracle's: its single points on the same ``geometries``
    (``labelled``, the labels of ``geometries[indices]``: LabelingWorkChain's outputs) and, when given, the
    properties of its own relaxation (``relaxed``, a second property job with the oracle's calculator). Returns
    ``table`` (Dict: ``rows`` of :func:`~aiida_mlip_trainer.physics.property_geometries.property_rows`, the three
    sets of properties, ``md``, ``missing``: properties without a reference because a geometry got no label) and
    ``plot`` (PNG: the equations of state and the relative errors)."""
    ours = properties.get_dict()
    reference, missing = None, []
    if labelled is not None:
        reference, missing = reference_properties(plan.get_dict(), geometries, labelled, indices.get_list())
    own = relaxed.get_dict() if relaxed is not None else None
    rows = property_rows(ours, reference, own)
    table: dict[str, Any] = {
        "rows": rows,
        "potential": ours,
        "reference": reference,
        "reference_relaxed": own,
        "missing": missing,
        "md": ours.get("md"),
    }
    return {"table": orm.Dict(table), "plot": png_file(_figure(ours, reference, own, rows), "properties.png")}


def properties_met(table: Mapping, targets: Mapping[str, float]) -> tuple[bool, list[str]]:
    """Whether every property named in ``targets`` (a row name of the table: ``a0``, ``B0``, ``C44``, ``vacancy``,
    ``surface(111)``, ...) is within its largest relative error (a fraction: 0.05 is 5 %) of the reference (the
    oracle's single points; else its own relaxation), and the reasons it is not. A property without a reference does
    not meet its target; ``md`` as a target asks that MD stayed physical."""
    reasons = []
    rows = {row["property"]: row for row in table["rows"]}
    for name, target in targets.items():
        if name == "md":
            md = table.get("md")
            if md is None or md.get("stopped") is not None:
                reasons.append(f"md: {'not run' if md is None else md['stopped']}")
            continue
        row = rows.get(name, {})
        error = row.get("reference_relative_error", row.get("reference_relaxed_relative_error"))
        if error is None:
            reasons.append(f"{name}: no reference")
        elif abs(error) > target:
            reasons.append(f"{name}: {100 * error:+.1f} % (target ±{100 * target:g} %)")
    return not reasons, reasons
