"""The short-range check: dimer and compressed-fcc scans below each pair's shortest training distance."""

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.baselines import baseline_calculator, derive_baseline
from aiida_mlip_trainer.physics.short_range import analyse_curve, plot_short_range, scan_short_range
from aiida_mlip_trainer.workflows.functions.baseline import check_short_range
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"  # a direct fit of LJ argon


def test_analyse_curve_on_a_hand_made_curve():
    r = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    e = np.array([9.0, 4.0, 4.5, 5.0, 1.0, 1.0, 0.0])  # rises inwards except 1.5-2.5 (attractive) and 3.0-3.5 (flat)
    result = analyse_curve(r, e, data_min=3.5)
    assert not result["repulsive"]
    assert result["not_rising"] == [[1.5, 2.5], [3.0, 3.5]]
    assert result["well_depth"] == pytest.approx(1.0)  # 4.0 at 1.5 Å lies 1 eV below 5.0 at 2.5 Å
    assert result["energy_at_short"] == pytest.approx(np.interp(1.75, r, e))
    assert result["rise_below_minimum"] == pytest.approx(np.interp(1.75, r, e) - 1.0)
    # beyond the data minimum anything goes; below it, any step that does not rise counts, however small
    assert analyse_curve(r, e, data_min=1.5)["repulsive"]
    assert analyse_curve(r, np.array([9, 8, 7, 6, 5, 5.0000001, 0]), data_min=4.0)["not_rising"] == [[3.0, 3.5]]


def test_an_attractive_curve_is_flagged():
    """Lennard-Jones with its minimum at 2^(1/6) sigma = 2.245 Å, data from 2.5 Å: attractive in between."""
    result = scan_short_range(LennardJones(sigma=2.0, epsilon=0.1, rc=6.0), {"Cu-Cu": 2.5, "Cu-Ni": 2.4})
    report = result["report"]
    assert not report["all_repulsive"] and report["not_repulsive"] == ["Cu-Cu", "Cu-Ni"]
    ((start, end),) = report["pairs"]["Cu-Cu"]["dimer"]["not_rising"]
    assert start == pytest.approx(2 ** (1 / 6) * 2.0, abs=0.01) and end == 2.5
    # the well below the data: from the energy at 2.5 Å down to LJ's minimum, -epsilon
    at_data = 4 * 0.1 * ((2.0 / 2.5) ** 12 - (2.0 / 2.5) ** 6)
    assert report["pairs"]["Cu-Cu"]["dimer"]["well_depth"] == pytest.approx(at_data + 0.1, rel=1e-3)
    assert "fcc" in report["pairs"]["Cu-Cu"] and "fcc" not in report["pairs"]["Cu-Ni"]
    assert not report["pairs"]["Cu-Cu"]["fcc"]["repulsive"] and report["compression_not_rising"] == ["Cu"]
    assert set(result["curves"]) == {"dimer_Cu_Cu", "dimer_Cu_Ni", "fcc_Cu"}
    # energies are relative to the isolated atoms (ASE's LJ is shifted to 0 at its cutoff)
    r, e = result["curves"]["dimer_Cu_Cu"].T
    assert r[0] == pytest.approx(0.4 * 2.5) and r[-1] == pytest.approx(1.3 * 2.5) and 2.5 in r and 1.25 in r
    shift = 4 * 0.1 * ((2.0 / 6.0) ** 12 - (2.0 / 6.0) ** 6)
    assert e[r == 2.5][0] == pytest.approx(at_data - shift, rel=1e-12)


def test_zbl_with_windows_from_the_data_is_repulsive_and_a_gap_is_not():
    distances = {"Cu-Cu": 2.3, "Cu-Ni": 2.2, "Ni-Ni": 2.4}
    derived = derive_baseline({"type": "zbl"}, distances, ["Cu", "Ni"])
    report = scan_short_range(baseline_calculator(derived), distances)["report"]
    assert report["all_repulsive"] and report["not_repulsive"] == []
    for entry in report["pairs"].values():
        assert entry["dimer"]["well_depth"] == 0 and entry["dimer"]["rise_below_minimum"] > 10  # eV: a real wall
    # one window for all pairs, at the shortest distance of any pair: nothing between 2.2 Å and Ni-Ni's 2.4 Å
    one_window = {"type": "zbl", "params": {"inner_cutoff": 1.65, "cutoff": 2.2}}
    report = scan_short_range(baseline_calculator(one_window), distances, bulk=False)["report"]
    assert report["not_repulsive"] == ["Cu-Cu", "Ni-Ni"]
    ((start, end),) = report["pairs"]["Ni-Ni"]["dimer"]["not_rising"]
    assert start == pytest.approx(2.2, abs=0.01) and end == 2.4


class _DensityCollapse(Calculator):
    """A repulsive pair term and an attractive density term: E = sum_pairs 10 exp(-r) - sum_i (sum_j exp(-r_ij))^2.
    The dimer rises at every step inwards; fcc, with 12 neighbours, falls below a nearest-neighbour distance of
    ln(288 / 60) = 1.57 Å from the first shell alone."""

    implemented_properties = ("energy",)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from ase.neighborlist import neighbor_list

        super().calculate(atoms, properties, system_changes)
        i, d = neighbor_list("id", self.atoms, 6.0)
        density = np.bincount(i, weights=np.exp(-d), minlength=len(self.atoms))
        self.results["energy"] = 0.5 * np.sum(10.0 * np.exp(-d)) - np.sum(density**2)


def test_collapse_under_compression_is_a_warning_beside_a_repulsive_dimer():
    report = scan_short_range(_DensityCollapse(), {"Cu-Cu": 2.5}, points=61)["report"]
    entry = report["pairs"]["Cu-Cu"]
    assert entry["dimer"]["repulsive"] and entry["repulsive"] and report["all_repulsive"]
    assert not entry["fcc"]["repulsive"] and report["compression_not_rising"] == ["Cu"]
    (start, end), *_ = entry["fcc"]["not_rising"]
    assert start == pytest.approx(1.0, abs=0.05) and 1.57 < end < 2.5  # further shells add to the density


class _NoLoneAtoms(LennardJones):
    """LJ that refuses an atom with fewer than two neighbours, as python-ace's GRACE-FS evaluator does (by crashing)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if len(atoms) < 3 and not atoms.pbc.any():
            raise RuntimeError("an atom with fewer than two neighbours")
        super().calculate(atoms, properties, system_changes)


def test_given_isolated_energies_scan_compressed_fcc_only_and_judge_no_pair():
    """A GRACE-FS potential: no dimer, no lone atom; the fcc curve is relative to the isolated energies given."""
    calculator = _NoLoneAtoms(sigma=2.0, epsilon=0.1, rc=6.0)
    result = scan_short_range(calculator, {"Cu-Cu": 2.5, "Cu-Ni": 2.4}, points=31, isolated_energies={"Cu": 0.5})
    report = result["report"]
    assert set(result["curves"]) == {"fcc_Cu"} and "dimers_not_scanned" in report
    assert report["all_repulsive"] is None and report["not_repulsive"] == []
    assert report["pairs"]["Cu-Cu"]["repulsive"] is None and "dimer" not in report["pairs"]["Cu-Cu"]
    assert report["compression_not_rising"] == ["Cu"]  # LJ's well, as in test_an_attractive_curve_is_flagged
    full = scan_short_range(LennardJones(sigma=2.0, epsilon=0.1, rc=6.0), {"Cu-Cu": 2.5}, points=31)
    shift = full["curves"]["fcc_Cu"][:, 1] - result["curves"]["fcc_Cu"][:, 1]
    assert shift == pytest.approx(np.full(shift.shape, 0.5), abs=1e-9)  # a lone LJ atom has energy 0
    assert plot_short_range(result)[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_is_a_png():
    result = scan_short_range(LennardJones(sigma=2.0, epsilon=0.1, rc=6.0), {"Ar-Ar": 2.5}, points=31)
    assert plot_short_range(result, title="LJ")[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_short_range_calcfunction():
    """On the recorded argon potential (a direct fit) plus an LJ wall; training data whose atoms are never closer
    than 5 Å, so the pair is scanned around the sum of its covalent radii and says so."""
    spread_out = [Atoms("Ar", cell=[5.5, 5.5, 5.5], pbc=True)]
    spread_out[0].calc = LennardJones()
    training_set = TrainingSetData(spread_out).store()
    lj = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}
    results = check_short_range(PacePotentialData(POTENTIAL, baseline=lj).store(), training_set)
    report = results["report"].get_dict()
    entry = report["pairs"]["Ar-Ar"]
    assert entry["source"] == "covalent radii (absent from the data)" and entry["data_min"] == pytest.approx(2 * 1.06)
    assert report["all_repulsive"] and report["baseline"] == lj and "window" not in entry
    assert results["curves"].get_array("dimer_Ar_Ar").shape == (271, 2)
    assert results["plot"].filename == "short_range.png"
    assert results["report"].creator.inputs.training_set.pk == training_set.pk
    # a ZBL potential reports the window of each pair
    zbl = {"type": "zbl", "params": {"Ar-Ar": {"inner_cutoff": 1.5, "cutoff": 2.0}}}
    report = check_short_range(PacePotentialData(POTENTIAL, baseline=zbl).store(), training_set)["report"]
    assert report["pairs"]["Ar-Ar"]["window"] == [1.5, 2.0]
    assert isinstance(report, orm.Dict)
