"""Is a potential repulsive where it has no data? Dimer (and compressed-bulk) scans below each pair's shortest
training distance.

A fitted ACE potential knows nothing below the shortest distance its training data contain for a pair of elements;
what keeps two atoms apart there is the baseline (delta learning) or nothing. :func:`scan_short_range` asks the
potential as it will be used (an ASE calculator: ACE plus its baseline) for every element pair:

- the **dimer**: two atoms alone (no periodicity, in a 20 Å box), at distances from ``SCAN_FROM`` to ``SCAN_TO``
  times the pair's shortest training distance ``d`` (0.4 d to 1.3 d, 271 points, d and the short distance
  among them: a step of 0.0033 d, about 0.007 Å);
- for a pair of one element, **compressed fcc bulk** as well (a periodic 4-atom cubic cell; the nearest-neighbour
  distance scanned over the same range, 91 points): many neighbours at once, the other way a simulation gets there.

Energies are relative to the isolated atoms (eV per dimer; eV per atom for the bulk). Below ``d`` the energy must
rise at every step towards shorter distances, up to numerical noise: a stretch that does not rise is forgiven only
when it is both shallower than ``WELL_TOLERANCE`` (5 meV, a fifth of kT at 300 K) and narrower than
``WIDTH_TOLERANCE`` (0.05 Å); see :func:`analyse_curve` for why. Reported per pair and curve: ``repulsive`` (it
does), ``not_rising`` (the distance ranges, Å, where a step inwards does not rise, forgiven or not), ``well_depth``
(eV: the largest energy an inner point lies *below* an outer point, the depth of a spurious well; 0 when every step
rises) and ``energy_at_short`` (eV: the energy at
``SHORT_DISTANCE_FRACTION`` = 0.5 of ``d``, relative to the isolated atoms) with ``rise_below_minimum`` (the same
minus the energy at ``d``: how high the wall stands above the data). Half of the shortest training distance is far
beyond what a time step can cross from the data, and for any pair it is well inside the ZBL-only region of a
derived window (0.75 d, see :func:`aiida_mlip_trainer.physics.baselines.derive_baseline`).

The **verdict** on a pair (``repulsive``, ``all_repulsive``, ``not_repulsive``) is the dimer's: that is what a pair
baseline guarantees, and what ``TrainingWorkChain`` turns into ERROR_SHORT_RANGE_NOT_REPULSIVE. Compressed fcc is
reported beside it as a **warning** (``compression_not_rising``): there every atom has 12 neighbours at once at a
distance the data have for one pair at most, and the energy is the ACE embedding of a density far above the data, which
no pair baseline switches off. Measured on the demo's copper (EMT, 19 selected cells, ZBL windows from the data): the
dimer rises by 104 eV from the data minimum to half of it, while fcc compressed to a nearest-neighbour distance of
0.84-1.47 Å falls to -1555 eV/atom. The remedies are data (compressed structures) or pacemaker's energy-based core cut
of the embedding (``embeddings: {ALL: {rho_core_cut: ..., drho_core_cut: ...}}``), both the user's choice.

The check is a safety criterion, not physics: a real dimer may well have its minimum below the shortest distance
of condensed-phase data (Cr2's bond, 1.68 Å, is far shorter than the shortest Cr-Cr distance in a Cr alloy). What
it guards against is a potential that invents attraction where it has no data, which an MD run finds and collapses
into. No AiiDA here: :func:`aiida_mlip_trainer.workflows.functions.baseline.check_short_range` records a check in
the graph.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from ase import Atoms

__all__ = (
    "WELL_TOLERANCE",
    "WIDTH_TOLERANCE",
    "SCAN_FROM",
    "SCAN_TO",
    "SHORT_DISTANCE_FRACTION",
    "analyse_curve",
    "dimer_energies",
    "plot_short_range",
    "scan_short_range",
)

SCAN_FROM = 0.4
SCAN_TO = 1.3
SHORT_DISTANCE_FRACTION = 0.5
SCAN_POINTS = 271
BULK_POINTS = 91  # a compressed crystal costs hundreds of neighbours an atom: a coarser grid
BOX = 20.0  # Å, the dimer's (non-periodic) box
# What tells numerical noise from a well (see analyse_curve): a dip at most this deep (eV) ...
WELL_TOLERANCE = 0.005
# ... and at most this wide (Å).
WIDTH_TOLERANCE = 0.05


def analyse_curve(distances: np.ndarray, energies: np.ndarray, data_min: float) -> dict:
    """Whether ``energies`` (eV) rise at every step towards shorter ``distances`` (Å, ascending) up to ``data_min``.

    Returns ``repulsive`` (bool), ``not_rising`` (a list of ``[start, end]`` distance ranges where a step inwards
    does not raise the energy: flat counts, since a flat energy pushes nothing apart), ``well_depth`` (eV, the
    largest amount by which a point lies below a point farther out, both at or below ``data_min``),
    ``energy_at_short`` (eV, at ``SHORT_DISTANCE_FRACTION * data_min``, interpolated) and ``rise_below_minimum``
    (that minus the energy at ``data_min``).

    ``repulsive`` is True when no range does not rise, or when the curve's only faults are noise: ``well_depth`` at
    most ``WELL_TOLERANCE`` (5 meV) and every range that does not rise at most ``WIDTH_TOLERANCE`` (0.05 Å) wide.
    Why these numbers: a dip of 5 meV is a fifth of kT at 300 K (25.9 meV), so it holds nothing at room
    temperature (a Boltzmann factor of 0.82 to leave it), and it is below the energy precision of the data a fit
    learns from (fits reach a few meV/atom at best); 0.05 Å is smaller than the thermal vibration of a bond at
    300 K (about 0.05-0.1 Å) and a few of the scan's steps. Such dips are what a fitted potential leaves at the edge
    of its data, where its own slope meets the smooth onset of the repulsion (measured: 0.4 to 21 meV within 0.03 Å
    of the data minimum). A real well (the 0.2-1.2 eV ones light elements had) is far deeper, and a flat stretch
    (a gap between the data and the repulsion) far wider, so neither passes: the tolerance is not tuned to make a
    potential pass."""
    distances, energies = np.asarray(distances, dtype=float), np.asarray(energies, dtype=float)
    below = distances <= data_min + 1e-12
    r, e = distances[below], energies[below]
    # Going outwards (increasing r) the energy must fall: a step that does not is a distance range of attraction.
    bad = np.diff(e) >= 0.0
    ranges: list[list[float]] = []
    for k in np.flatnonzero(bad):
        if ranges and ranges[-1][1] == float(r[k]):
            ranges[-1][1] = float(r[k + 1])
        else:
            ranges.append([float(r[k]), float(r[k + 1])])
    lowest_inside = np.minimum.accumulate(e)  # lowest energy at or inside each distance
    depth = float(np.max(e - lowest_inside)) if e.size else 0.0
    short = float(np.interp(SHORT_DISTANCE_FRACTION * data_min, distances, energies))
    at_min = float(np.interp(data_min, distances, energies))
    noise = depth <= WELL_TOLERANCE and all(b - a <= WIDTH_TOLERANCE + 1e-12 for a, b in ranges)
    return {
        "repulsive": not ranges or noise,
        "not_rising": [[round(a, 4), round(b, 4)] for a, b in ranges],
        "well_depth": depth,
        "energy_at_short": short,
        "rise_below_minimum": short - at_min,
    }


def _energy(atoms: Atoms, calculator) -> float:
    atoms.calc = calculator
    return float(atoms.get_potential_energy())


def _isolated(symbol: str, calculator) -> float:
    return _energy(Atoms(symbol, positions=[[BOX / 2] * 3], cell=[BOX] * 3, pbc=False), calculator)


def _dimer(a: str, b: str, r: float) -> Atoms:
    return Atoms(a + b, positions=[[BOX / 2 - r / 2, BOX / 2, BOX / 2], [BOX / 2 + r / 2, BOX / 2, BOX / 2]],
                 cell=[BOX] * 3, pbc=False)  # fmt: skip


def dimer_energies(calculator, a: str, b: str, distances) -> np.ndarray:
    """Energies (eV) of the dimer of elements ``a`` and ``b`` alone (non-periodic, in a 20 Å box) at ``distances``
    (Å), relative to the two isolated atoms, with the ASE ``calculator``."""
    isolated = _isolated(a, calculator) + _isolated(b, calculator)
    return np.array([_energy(_dimer(a, b, float(r)), calculator) for r in distances]) - isolated


def _fcc(symbol: str, nearest: float) -> Atoms:
    from ase.build import bulk

    return bulk(symbol, "fcc", a=nearest * np.sqrt(2.0), cubic=True)


def _grid(data_min: float, points: int) -> np.ndarray:
    """``points`` distances from SCAN_FROM to SCAN_TO times ``data_min``, with ``data_min`` and the short distance
    exactly on the grid (replacing the points nearest to them, so no step is vanishingly short)."""
    grid = np.linspace(SCAN_FROM * data_min, SCAN_TO * data_min, points)
    for exact in (SHORT_DISTANCE_FRACTION * data_min, data_min):
        grid[np.argmin(np.abs(grid - exact))] = exact
    return grid


def scan_short_range(
    calculator,
    min_distances: Mapping[str, float],
    *,
    bulk: bool = True,
    points: int = SCAN_POINTS,
    isolated_energies: Mapping[str, float] | None = None,
) -> dict:
    """Scan every pair of ``min_distances`` (``{"Cu-Ni": 2.21, ...}``: each pair's shortest training distance, Å,
    e.g. from :func:`aiida_mlip_trainer.physics.baselines.pair_min_distances`) with ``calculator`` (an ASE
    calculator: the potential as it is used, ACE plus its baseline).

    Returns ``{"report": {...}, "curves": {...}}``. ``report`` (JSON-serialisable): ``all_repulsive``,
    ``not_repulsive`` (the pairs that are not), the scan settings, and ``pairs``: per pair ``data_min`` and a
    ``dimer`` entry (plus ``fcc`` for a pair of one element, with ``bulk``) holding the result of
    :func:`analyse_curve`, and ``repulsive`` (the dimer is: the verdict on the pair); ``compression_not_rising``
    lists the elements whose compressed fcc does not rise at every step (a warning, see the module's text).
    ``curves``: ``{"dimer_Cu_Ni": array (n, 2)
    of distance (Å) and energy (eV, relative to the isolated atoms), "fcc_Cu": (n, 2) nearest-neighbour distance
    and energy per atom, ...}``.

    ``isolated_energies`` (eV per element) are given for a calculator that cannot take an atom with fewer than two
    neighbours (python-ace 0.4.0rc1's GRACE-FS evaluator crashes the Python process on a dimer or a lone atom):
    then no dimer is scanned, the pairs' verdict (``repulsive``, ``all_repulsive``) is None, not judged, and
    ``dimers_not_scanned`` says why; compressed fcc is scanned and reported as always."""
    isolated: dict[str, float] = dict(isolated_energies or {})
    dimers = isolated_energies is None

    def reference(symbol: str) -> float:
        if symbol not in isolated:
            isolated[symbol] = _isolated(symbol, calculator)
        return isolated[symbol]

    pairs, curves = {}, {}
    for key, data_min in sorted(min_distances.items()):
        a, b = key.split("-")
        data_min = float(data_min)
        entry = {"data_min": data_min}
        if dimers:
            grid = _grid(data_min, points)
            energies = dimer_energies(calculator, a, b, grid)
            curves[f"dimer_{a}_{b}"] = np.column_stack([grid, energies])
            entry["dimer"] = analyse_curve(grid, energies, data_min)
        if bulk and a == b:
            nearest = _grid(data_min, BULK_POINTS)
            per_atom = []
            for r in nearest:
                crystal = _fcc(a, r)
                per_atom.append(_energy(crystal, calculator) / len(crystal) - reference(a))
            curves[f"fcc_{a}"] = np.column_stack([nearest, per_atom])
            entry["fcc"] = analyse_curve(nearest, np.array(per_atom), data_min)
        entry["repulsive"] = entry["dimer"]["repulsive"] if dimers else None
        pairs[key] = entry
    not_repulsive = [key for key, entry in pairs.items() if entry["repulsive"] is False]
    compression = [
        key.split("-")[0] for key, entry in pairs.items() if "fcc" in entry and not entry["fcc"]["repulsive"]
    ]
    report = {
        "all_repulsive": not not_repulsive if dimers else None,
        "not_repulsive": not_repulsive,
        "compression_not_rising": compression,
        "scan": {
            "from_fraction": SCAN_FROM,
            "to_fraction": SCAN_TO,
            "points": {"dimer": points, "fcc": BULK_POINTS},
            "short_distance_fraction": SHORT_DISTANCE_FRACTION,
            "units": {"distance": "Å", "energy": "eV (dimer), eV/atom (fcc), relative to the isolated atoms"},
        },
        "pairs": pairs,
    }
    if not dimers:
        report["dimers_not_scanned"] = (
            "the calculator cannot evaluate an atom with fewer than two neighbours (python-ace's GRACE-FS evaluator "
            "crashes on a dimer): compressed fcc only, no verdict on the pairs"
        )
    return {"report": report, "curves": curves}


def plot_short_range(result: Mapping, title: str = "") -> bytes:
    """A PNG of the curves of :func:`scan_short_range`: one panel per pair, the dimer (and fcc) energy against
    distance on a symmetric-log energy axis, the shortest training distance dashed, the ranges that do not rise
    shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = result["report"]["pairs"]
    count = max(len(pairs), 1)
    columns = min(count, 4)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows), squeeze=False)
    for axis, (key, entry) in zip(axes.ravel(), pairs.items(), strict=False):
        a, b = key.split("-")
        for name, style in (("dimer", "-"), ("fcc", "--")):
            curve = result["curves"].get(f"{name}_{a}_{b}" if name == "dimer" else f"fcc_{a}")
            if curve is None or name not in entry:
                continue
            label = "dimer (eV)" if name == "dimer" else "fcc (eV/atom)"
            axis.plot(curve[:, 0], curve[:, 1], style, label=label)
            for start, end in entry[name]["not_rising"]:
                axis.axvspan(start, end, color="tab:red", alpha=0.3)
        axis.axvline(entry["data_min"], color="0.4", linestyle=":", label="shortest in data")
        axis.set_yscale("symlog", linthresh=1.0)
        verdict = {True: "repulsive", False: "NOT repulsive", None: "dimer not scanned"}[entry["repulsive"]]
        axis.set_title(f"{key}: {verdict}", fontsize=10)
        axis.set_xlabel("distance (Å)")
        axis.legend(fontsize=7)
    for axis in axes.ravel()[count:]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()
