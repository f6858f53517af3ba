"""Short range for light elements (issue 18, item 8): pacemaker's core repulsion where ZBL is weak, and the stated
tolerance that tells numerical noise from a well. Fast: no fit (the real fit is in
tests/integration/test_short_range_molecule.py)."""

import numpy as np
import pytest

from aiida_mlip_trainer.formats.basis import (
    MIN_SWITCH_WIDTH,
    ONSET_DIP,
    core_repulsion_of,
    dimer_energy,
    onset_dip,
    size_core_repulsion,
)
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
from aiida_mlip_trainer.physics.baselines import (
    CORE_SWITCH_FRACTION,
    SHORT_RANGE_WALL,
    ace_give_back,
    core_over_ace,
    core_repulsion,
    core_switch_width,
    derive_baseline,
    pair_min_distances,
    zbl_window_rise,
)
from aiida_mlip_trainer.physics.reference_data import molecules_emt
from aiida_mlip_trainer.physics.short_range import WELL_TOLERANCE, WIDTH_TOLERANCE, analyse_curve


def test_molecules_emt_are_labelled_isolated_molecules_with_every_light_pair():
    structures = molecules_emt(10, seed=2)
    assert len(structures) == 10 and not any(atoms.pbc.any() for atoms in structures)
    assert {atoms.info["name"].split("_")[0] for atoms in structures} == {"CH4", "H2O", "CH3OH", "CO2", "C2H6"}
    for atoms in structures:
        assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (len(atoms), 3)
    assert set(pair_min_distances(structures)) == {"C-C", "C-H", "C-O", "H-H", "H-O", "O-O"}
    # reproducible
    again = molecules_emt(10, seed=2)
    assert np.allclose(again[3].positions, structures[3].positions)


def test_zbl_climbs_little_between_light_atoms():
    assert zbl_window_rise("H", "H", 1.094, 1.459) == pytest.approx(0.32, abs=0.01)
    assert zbl_window_rise("C", "O", 0.72, 0.96) == pytest.approx(22.0, abs=0.1)
    assert zbl_window_rise("Cu", "Cu", 1.65, 2.2) == pytest.approx(8.2, abs=0.1)


def test_core_repulsion_tops_up_a_weak_zbl_to_the_wall():
    rise = zbl_window_rise("H", "H", 1.094, 1.459)
    prefactor, decay = core_repulsion("H", "H", 1.094, 1.459)
    # two atoms, each with prefactor / r at the inner cutoff: ZBL plus the core make the wall
    assert decay == 0.0 and rise + 2 * prefactor / 1.094 == pytest.approx(SHORT_RANGE_WALL, abs=1e-5)
    assert core_repulsion("C", "O", 0.72, 0.96) is None  # ZBL alone climbs 22 eV: nothing added
    assert core_repulsion("H", "H", 1.094, 1.459, wall=0.3) is None


def test_derived_windows_give_light_pairs_a_core_repulsion(small_parameters):
    distances = {"C-H": 0.838, "C-O": 0.96, "H-H": 1.459, "O-O": 2.234, "C-C": 1.459, "H-O": 0.815}
    baseline = derive_baseline({"type": "zbl"}, distances, ["C", "H", "O"])
    config = build_input_yaml(small_parameters, elements=["C", "H", "O"], train_filename="t.pkl.gz", baseline=baseline)
    bonds = config["potential"]["bonds"]
    for key, pair in (("H H", "H-H"), ("C H", "C-H"), ("O O", "O-O"), ("C C", "C-C"), ("H O", "H-O")):
        inner, outer = baseline["params"][pair]["inner_cutoff"], baseline["params"][pair]["cutoff"]
        assert bonds[key]["core-repulsion"] == core_repulsion(*pair.split("-"), inner, outer)
        # the core is switched on where ACE is switched off: from d (nothing where the data are) over the last 5 %
        # of the window, steeply enough to beat ACE's slope at the data's edge
        assert bonds[key]["r_in"] == outer
        assert bonds[key]["delta_in"] == core_switch_width(outer) == pytest.approx(CORE_SWITCH_FRACTION * outer)
    assert "core-repulsion" not in bonds["C O"]  # its ZBL climbs 22 eV: its ACE is switched off across the window
    co = baseline["params"]["C-O"]
    assert bonds["C O"]["r_in"] == co["cutoff"] and bonds["C O"]["delta_in"] == co["cutoff"] - co["inner_cutoff"]
    # the user's own core repulsion (here in ALL) is left alone, and none is added to any pair
    small_parameters["potential"]["bonds"]["ALL"]["core-repulsion"] = [1.0, 2.0]
    config = build_input_yaml(small_parameters, elements=["C", "H", "O"], train_filename="t.pkl.gz", baseline=baseline)
    assert not any("core-repulsion" in block for key, block in config["potential"]["bonds"].items() if key != "ALL")


def _dimer_curve(dip_depth: float, dip_width: float):
    """A curve below d = 1.0 Å that falls by ``dip_depth`` (eV) going inwards over ``dip_width`` (Å) from d, then
    rises steeply: a dip of exactly that depth and width."""
    r = np.linspace(0.4, 1.3, 271)
    edge = 1.0 - dip_width
    e = np.where(r >= edge, -dip_depth * np.clip((1.0 - r) / dip_width, 0, 1), -dip_depth + 5.0 * (edge - r) ** 2)
    return r, e


def test_noise_is_forgiven_a_well_or_a_gap_is_not():
    assert WELL_TOLERANCE == 0.005 and WIDTH_TOLERANCE == 0.05
    r, e = _dimer_curve(0.003, 0.02)  # 3 meV over 0.02 Å: noise at the data's edge
    result = analyse_curve(r, e, data_min=1.0)
    assert result["not_rising"] and 0 < result["well_depth"] <= WELL_TOLERANCE and result["repulsive"]
    for depth, width in ((0.02, 0.02), (0.23, 0.16), (0.004, 0.12)):  # too deep; a real well; too wide
        assert not analyse_curve(*_dimer_curve(depth, width), data_min=1.0)["repulsive"], (depth, width)
    # a flat gap between the data and the repulsion is no noise: zero depth, but 0.2 Å wide
    r = np.linspace(0.4, 1.3, 271)
    flat = np.where(r < 0.8, 5.0 * (0.8 - r) ** 2, 0.0)
    result = analyse_curve(r, flat, data_min=1.0)
    assert result["well_depth"] == 0 and not result["repulsive"]


def test_ace_give_back_is_the_deepest_fall_inwards():
    r = np.linspace(0.9, 1.0, 11)
    assert ace_give_back(r, 2.0 * (r - 0.9) / 0.1) == pytest.approx(2.0)  # falls by 2 eV from d inwards
    assert ace_give_back(r, -(r - 0.9)) == 0.0  # rises inwards: gives nothing back
    bump = np.array([0.0, 0.5, 0.2, 0.3, 1.0, 0.4, 0.4, 0.6, 0.8, 0.9, 0.7])  # a bump inside the window counts
    assert ace_give_back(r, bump) == pytest.approx(1.0)


def test_core_over_ace_sizes_the_core_to_rank_times_the_give_back():
    # the core's dimer energy at d, 2 prefactor / d, is rank x give-back: 2 x 2.25 / 0.9 = 5 = 3 x 5/3
    assert core_over_ace(5 / 3, 0.9, 3, floor=1.0) == pytest.approx(2.25, abs=1e-6)
    assert core_over_ace(0.1, 0.9, 3, floor=1.0) == 1.0  # ZBL's value is the floor
    assert core_over_ace(0.0, 0.9, 3, floor=0.0) == 0.0
    # with a decay lambda the term is prefactor exp(-lambda r^2) / r: the prefactor makes up for it at d
    prefactor = core_over_ace(1.0, 1.0, 3, floor=0.0, decay=0.5)
    assert 2 * prefactor * np.exp(-0.5) / 1.0 == pytest.approx(3.0, abs=1e-5)
    with pytest.raises(ValueError):
        core_over_ace(-1.0, 0.9, 3, floor=0.0)


def _hand_made_potential(parameters):
    """A C/H ACE potential with the plugin's core repulsion for C-H (d = 0.9 Å, switched over [0.855, 0.9] Å) and
    seeded random coefficients, whose ACE part gives back about 21 eV across the C-H window: far more than ZBL's
    core pays."""
    from pyace.basisextension import construct_bbasisconfiguration

    baseline = derive_baseline({"type": "zbl"}, {"C-H": 0.9, "C-C": 1.4, "H-H": 1.4}, ["C", "H"])
    config = build_input_yaml(parameters, elements=["C", "H"], train_filename="t.pkl.gz", baseline=baseline)
    config = construct_bbasisconfiguration(config["potential"])
    config.set_func_coeffs(np.random.default_rng(0).normal(scale=3.0, size=len(config.get_func_coeffs())))
    return config, core_repulsion("C", "H", 0.675, 0.9)[0]


def _fall_inwards(distances, energies) -> float:
    """The deepest fall of a curve going inwards (eV), written here independently of the plugin."""
    return float(np.max(np.maximum.accumulate(energies[::-1])[::-1] - energies))


def test_the_fitted_core_makes_a_hand_made_potential_rise_below_d(small_parameters):
    config, floor = _hand_made_potential(small_parameters)
    assert core_repulsion_of(config)["C-H"]["prefactor"] == floor
    d, window = 0.9, np.linspace(0.855, 0.9, 201)
    assert _fall_inwards(window, dimer_energy(config, "C", "H", window, core=False)) > 5.0  # ACE's give-back
    scan = np.linspace(0.4 * d, 1.3 * d, 271)
    before = analyse_curve(scan, dimer_energy(config, "C", "H", scan), data_min=d)
    assert not before["repulsive"] and before["well_depth"] > 1.0, before  # ZBL's core: a real well

    sized, report = size_core_repulsion(config, {"C-H": floor, "C-C": 100.0})
    entry, core = report["C-H"], core_repulsion_of(sized)["C-H"]
    assert entry["old"] == floor < entry["new"] and entry["distance"] == d and entry["rank"] == 3
    assert core["prefactor"] == entry["new"] and core["r_in"] == d
    # how sharp: with the core sized on the old window [0.855, 0.9] the dimer still follows ACE's own slope down below
    # d by more than the tolerance; the switch was narrowed (never below MIN_SWITCH_WIDTH) until less than ONSET_DIP
    # was left
    assert entry["old_delta_in"] == 0.045 and entry["onset_dip"] > WELL_TOLERANCE, entry
    assert MIN_SWITCH_WIDTH <= entry["new_delta_in"] == core["delta_in"] < 0.045
    assert entry["new_onset_dip"] <= ONSET_DIP and entry["new_onset_dip"] == onset_dip(sized, "C", "H")
    # how strong: across the new window the core's dimer energy at d, 2 prefactor / d, is rank (3) x the give-back
    new_window = np.linspace(d - core["delta_in"], d, 201)
    give_back = _fall_inwards(new_window, dimer_energy(sized, "C", "H", new_window, core=False))
    assert entry["give_back"] == pytest.approx(give_back, rel=1e-9)
    assert 2 * entry["new"] / d == pytest.approx(3 * give_back, rel=1e-6)
    # C-C: its core is sized from its floor (100, larger than anything its ACE part gives back), no onset dip: its
    # window is kept
    assert report["C-C"]["new"] == 100.0 and core_repulsion_of(sized)["C-C"]["prefactor"] == 100.0
    assert report["C-C"]["new_delta_in"] == report["C-C"]["old_delta_in"] == core_repulsion_of(sized)["C-C"]["delta_in"]
    assert "H-H" not in report and core_repulsion_of(sized)["H-H"] == core_repulsion_of(config)["H-H"]
    after = analyse_curve(scan, dimer_energy(sized, "C", "H", scan), data_min=d)
    assert after["repulsive"] and after["well_depth"] <= WELL_TOLERANCE, after
    fine = np.linspace(0.8, d, 4001)  # a step of 0.000025 Å: the onset dip is resolved
    assert _fall_inwards(fine, dimer_energy(sized, "C", "H", fine)) <= ONSET_DIP * 1.05
    # nothing changes where the data are: at and beyond d the core is switched off and ACE fully on
    outside = np.linspace(d, 2.0, 50)
    assert np.allclose(dimer_energy(sized, "C", "H", outside), dimer_energy(config, "C", "H", outside), atol=1e-9)
