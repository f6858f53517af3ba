"""The learning curve of an active-learning loop: held-out errors, exploration and oracle calls per round."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from .potential import judge_learning, png_file

__all__ = (
    "CURVE_COLUMNS",
    "FEW_TEST_STRUCTURES",
    "curve_rows",
    "explain_rises",
    "learning_curve",
    "learning_curve_figure",
    "oracle_calls",
)

CURVE_COLUMNS = (
    "round",
    "oracle_calls",
    "training_structures",
    "energy_rmse",
    "force_rmse",
    "max_gamma",
    "fraction_halted",
    "candidates",
)


def oracle_calls(failures: Mapping[str, Any]) -> int:
    """Oracle calls of one labelling (its ``failures`` output): labelled and failed, both paid for."""
    return int(failures["num_labelled"]) + int(failures["num_failed"])


def curve_rows(
    metrics: list[Mapping[str, Any]],
    training_structures: list[int],
    explorations: Mapping[int, Mapping[str, Any]],
    labelings: Mapping[int, Mapping[str, Any]],
    initial: Mapping[str, Any] | None = None,
    extras: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The rows of the learning curve (one per fitted round ``k``, the columns of :data:`CURVE_COLUMNS`) from plain
    dictionaries: the held-out ``metrics`` of each fit, its number of ``training_structures``, the exploration
    summary of the rounds that explored and the ``failures`` output of the rounds that labelled (``initial``: the
    labelling of the initial structures). ``oracle_calls`` of a round counts every call made before its fit; None
    where a round did not explore. ``learned`` (not a column of the curve) is :func:`judge_learning`'s verdict on the
    round's held-out errors: False when they are at least half the spread of the held-out data. ``extras`` are added
    to the row of their round as they are (the loop's ``validation``, ``picks`` and ``starts``)."""
    made = oracle_calls(initial) if initial is not None else 0
    rows = []
    for k, (errors, structures) in enumerate(zip(metrics, training_structures, strict=True)):
        exploration = explorations.get(k, {})
        rows.append(
            {
                "round": k,
                "oracle_calls": made,
                "training_structures": int(structures),
                "energy_rmse": float(errors["energy_rmse"]),
                "force_rmse": float(errors["force_rmse"]),
                "max_gamma": exploration.get("max_gamma"),
                "fraction_halted": exploration.get("fraction_halted"),
                "candidates": exploration.get("num_candidates"),
                # errors at least half the spread of the held-out data (judged again: older metrics have no flag)
                "learned": judge_learning(errors)["learned"],
                **(extras or {}).get(k, {}),
            }
        )
        if k in labelings:
            made += oracle_calls(labelings[k])
    return rows


def _round_extras(rounds: Mapping[str, orm.Data], count: int) -> dict[int, dict[str, Any]]:
    """Per round what the summary shows besides the curve: ``validation`` (largest and median γ of the validation
    structures and which extrapolate), ``picks`` (how the picks spread over conditions and origins), ``properties``
    (the round's materials properties next to the oracle's) and ``starts`` (the starting structures explored, per
    origin, and the resume frames among them)."""
    extras: dict[int, dict[str, Any]] = {}
    for k in range(count):
        row = extras.setdefault(k, {})
        if f"validation_{k}" in rounds:
            validation = rounds[f"validation_{k}"].get_dict()
            row["validation"] = {key: validation[key] for key in ("max_gamma", "median_gamma", "extrapolating")}
        if f"picks_{k}" in rounds:
            row["picks"] = rounds[f"picks_{k}"].get_dict()
        if f"properties_{k}" in rounds:  # the round's property table: value, reference and relative error per row
            row["properties"] = {
                entry["property"]: {
                    key: value for key, value in entry.items() if key == "potential" or key.startswith("reference")
                }
                for entry in rounds[f"properties_{k}"]["rows"]
            }
        if f"starts_{k}" in rounds:
            origins = rounds[f"starts_{k}"].get_list()
            row["starts"] = {origin: origins.count(origin) for origin in sorted(set(origins))}
    return extras


@calcfunction
def learning_curve(stop_reason: orm.Str, notes: orm.List | None = None, **rounds: orm.Data) -> dict:
    """The learning curve of an active-learning loop. For round ``k`` pass ``metrics_k`` (the held-out validation of
    that round's potential), ``training_set_k`` (what it was fitted on), ``exploration_k`` (the exploration summary,
    when the round explored) and ``labeling_k`` (the ``failures`` output of its labelling, when it labelled; an
    ``initial_labeling`` for the labelling of the initial structures); optionally ``validation_k`` (the γ of the
    validation structures), ``picks_k`` (the spread of the picks), ``properties_k`` (the property table of the
    round's potential) and ``starts_k`` (the origins of the starting
    structures), shown in the round's row of the summary, and ``notes`` (the rounds that would have converged but for
    an extrapolating validation structure). Oracle calls are counted from the labellings:
    a round's figure is every call made before its fit (labelled and failed).

    Returns ``curve`` (ArrayData, one array per column of :data:`CURVE_COLUMNS`; energies in meV/atom, forces in
    meV/Å, NaN where a round did not explore), ``plot`` (PNG: held-out errors against cumulative oracle calls; max γ
    and the fraction of halted trajectories per round) and ``summary`` (Dict: the rounds and why the loop stopped)."""

    count = 1 + max(int(key.rsplit("_", 1)[1]) for key in rounds if key.startswith("metrics_"))
    labelings = {k: rounds[f"labeling_{k}"].get_dict() for k in range(count) if f"labeling_{k}" in rounds}
    initial = rounds["initial_labeling"].get_dict() if "initial_labeling" in rounds else None
    per_round = curve_rows(
        [rounds[f"metrics_{k}"].get_dict() for k in range(count)],
        [rounds[f"training_set_{k}"].num_structures for k in range(count)],
        {k: rounds[f"exploration_{k}"].get_dict() for k in range(count) if f"exploration_{k}" in rounds},
        labelings,
        initial,
        _round_extras(rounds, count),
    )
    columns = {name: [np.nan if row[name] is None else row[name] for row in per_round] for name in CURVE_COLUMNS}
    made = sum(oracle_calls(failures) for failures in labelings.values()) + (oracle_calls(initial) if initial else 0)
    curve = orm.ArrayData()
    for name, values in columns.items():
        curve.set_array(name, np.asarray(values, dtype=float))

    figure = learning_curve_figure(columns, made)
    summary = {
        "rounds": per_round,
        "oracle_calls": made,
        "stop_reason": stop_reason.value,
        "converged": stop_reason.value.startswith("converged"),
        "notes": notes.get_list() if notes is not None else [],
        "units": {"energy_rmse": "meV/atom", "force_rmse": "meV/Å"},
    }
    return {
        "curve": curve,
        "plot": png_file(figure, "learning_curve.png"),
        "summary": orm.Dict(summary),
    }


def learning_curve_figure(columns: Mapping[str, list], made: int):
    """The figure of :func:`learning_curve` (a matplotlib Figure): held-out errors against cumulative oracle calls,
    and per round the largest γ and the fraction of halted trajectories. ``columns``: one list per column of
    :data:`CURVE_COLUMNS` (NaN where a round did not explore); ``made``: the oracle calls of the whole loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (errors, gamma) = plt.subplots(1, 2, figsize=(10, 4))
    errors.plot(columns["oracle_calls"], columns["force_rmse"], "o-", color="tab:blue")
    errors.set_xlabel("oracle calls before the fit (cumulative)")
    errors.set_ylabel("held-out force RMSE (meV/Å)", color="tab:blue")
    energy = errors.twinx()
    energy.plot(columns["oracle_calls"], columns["energy_rmse"], "s--", color="tab:orange")
    energy.set_ylabel("held-out energy RMSE (meV/atom)", color="tab:orange")
    gamma.plot(columns["round"], columns["max_gamma"], "o-", color="tab:green")
    gamma.set_yscale("log")
    gamma.set_xlabel("round")
    for axis in (errors, gamma):  # rounds and calls are whole numbers: no tick at round 0.25
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    gamma.set_ylabel("largest extrapolation grade γ in exploration", color="tab:green")
    halted = gamma.twinx()
    halted.bar(columns["round"], columns["fraction_halted"], alpha=0.3, color="tab:red")
    halted.set_ylim(0, 1)
    halted.set_ylabel("fraction of trajectories halted", color="tab:red")
    figure.suptitle(f"active learning: {len(columns['round'])} rounds, {made} oracle calls")
    return figure


# Below this many held-out structures an error moves by chance from one fit to the next.
FEW_TEST_STRUCTURES = 10


def explain_rises(rounds: list[Mapping[str, Any]]) -> dict[int, str]:
    """Why the held-out force error rose, for every fitted round ``k`` whose error is above round ``k - 1``'s: the
    causes the data show, or that none was found. ``rounds``: per fitted round, ``force_rmse`` (meV/Å),
    ``test_structures`` (how many held-out structures), ``test_set`` (its content hash; None when unknown),
    ``test_energies`` (the held-out energies per atom, eV) and ``added_energies`` (the energies per atom of the
    training structures added since the previous round, eV; empty or None when none were)."""
    explained = {}
    for k in range(1, len(rounds)):
        before, now = rounds[k - 1], rounds[k]
        if not now["force_rmse"] > before["force_rmse"]:
            continue
        causes = []
        count = now.get("test_structures")
        if count is not None and count < FEW_TEST_STRUCTURES:
            causes.append(f"only {count} test structures: an error over so few changes by chance from fit to fit")
        if None not in (now.get("test_set"), before.get("test_set")) and now["test_set"] != before["test_set"]:
            causes.append(f"the test set changed between rounds {k - 1} and {k}: the two errors are not comparable")
        far = _far_from_test(now.get("test_energies"), now.get("added_energies"))
        if far:
            causes.append(far)
        rise = f"the test force error rose from {before['force_rmse']:.1f} to {now['force_rmse']:.1f} meV/Å"
        explained[k] = f"{rise}: " + "; ".join(causes) if causes else f"{rise}; no cause found"
    return explained


def _far_from_test(test_energies, added_energies) -> str | None:
    """A cause when most structures added before a fit have energies per atom outside the held-out ones' range
    (widened by their spread): the fit spent itself where the test set does not look."""
    if test_energies is None or added_energies is None or len(test_energies) == 0 or len(added_energies) == 0:
        return None
    test, added = np.asarray(test_energies, dtype=float), np.asarray(added_energies, dtype=float)
    low, high = test.min() - test.std(), test.max() + test.std()
    outside = int(np.count_nonzero((added < low) | (added > high)))
    if 2 * outside < len(added):
        return None
    return (
        f"{outside} of the {len(added)} structures added before this fit have energies per atom outside the test "
        f"set's ({1000 * (added.mean() - test.mean()):+.0f} meV/atom from its mean on average, test spread "
        f"{1000 * test.std():.0f}): the fit learned where the test set does not look"
    )
