"""Label definitions of the forward model: window membership, edge SNR and the detection rule."""

from __future__ import annotations

import numpy as np
import pytest

from eelsbatch.edges import element_of, even_guess_ceiling, twin_counts, window_twins
from eelsbatch.synth import ELEMENTS, ROSE_SNR, Quality, simulate
from eelsbatch.synth._forward import BACKGROUND_H, edge_snr, observer_z


def test_an_element_whose_edges_all_miss_the_window_is_not_labelled() -> None:
    # 400 to 912 eV: Fe L2,3 (708 eV) inside; Si K (1839 eV) above and Si L2,3 (99 eV) below.
    sample = simulate(np.random.default_rng([7, 0]), 2048, ["Fe", "Si"], (400.0, 0.25))
    present = dict(zip(ELEMENTS, sample["present"]))
    assert present["Fe"] and not present["Si"]
    assert sum(present.values()) == 1
    labelled = {element_of(int(i)) for i in sample["onset_label"][sample["onset_label"] >= 0]}
    assert labelled == {"Fe"}
    assert sample["snr"][ELEMENTS.index("Si")] == 0 and sample["jump_ratio"][ELEMENTS.index("Si")] == 0


def test_edge_snr_follows_egerton_with_the_detector_gain_pattern() -> None:
    # Egerton's h: the background counts BACKGROUND_H times in the noise of a background-subtracted edge
    assert edge_snr(100.0, 1e4, 0.0) == pytest.approx(100 / np.sqrt(100 + BACKGROUND_H * 1e4 + 1))
    # shot-noise limited: the SNR grows as the square root of the dose
    assert edge_snr(1e4, 1e5, 0.0) / edge_snr(1e2, 1e3, 0.0) == pytest.approx(10.0, rel=1e-3)
    # a 1 % rms gain pattern caps the SNR at S / (0.01 B) however high the dose: a 10 % edge reads 10
    assert edge_snr(1e8, 1e9, 0.01) == pytest.approx(10.0, rel=1e-3)
    assert edge_snr(1e10, 1e11, 0.01) == pytest.approx(10.0, rel=1e-3)


def test_simulated_edge_snr_grows_with_dose_at_most_as_its_square_root() -> None:
    # Same generator state: only the dose differs (a degenerate range is drawn without changing the stream).
    low, high = (
        simulate(np.random.default_rng([3, 1]), 2048, ["O", "Fe"], (450.0, 0.25), Quality(log_dose=(d, d)))
        for d in (3.0, 5.0)
    )
    o, fe = ELEMENTS.index("O"), ELEMENTS.index("Fe")
    assert high["dose"] == pytest.approx(100 * low["dose"])
    ratio = high["snr"][[o, fe]] / low["snr"][[o, fe]]
    assert (ratio > 2.0).all() and (ratio <= 10.0 + 1e-3).all(), ratio


def test_observer_z_is_blind_to_what_a_power_law_explains_and_grows_with_the_square_root_of_the_counts() -> None:
    energy = np.linspace(400.0, 700.0, 1201)
    background = 1e4 * (energy / 400.0) ** -3.0
    step = np.where(energy >= 532.0, 0.05 * background, 0.0)
    # a signal that only scales or bends the background locally is no edge for an observer who fits it
    bend = 0.05 * background * (1.0 - 0.5 * np.log(energy / 532.0))  # A E**-r with A and r changed, to first order
    assert observer_z(bend, background + bend, background + bend, energy, 532.0) < 1e-3 * observer_z(
        step, background + step, background + step, energy, 532.0)
    # shot noise only: 100 times the counts, 10 times the significance
    z = [observer_z(dose * step, dose * (background + step), dose * (background + step), energy, 532.0) for dose in (1.0, 100.0)]
    assert z[1] / z[0] == pytest.approx(10.0, rel=1e-6)
    # only the fitting region counts: a channel more than the pre-edge span below the onset changes nothing
    far = energy < 532.0 - 60.0
    moved = np.where(far, 3.0 * background, background + step)
    assert observer_z(step, moved, moved, energy, 532.0) == pytest.approx(z[0], rel=1e-9)


def test_simulated_spectra_carry_the_ideal_observer_z_of_each_edge_in_the_window() -> None:
    samples = [simulate(np.random.default_rng([11, i]), 2048, ["C", "Fe", "La"], (250.0, 0.4)) for i in range(12)]
    present = np.array([s["present"] for s in samples])
    z = np.array([s["observer_z"] for s in samples])
    assert (z[present] > 0).all() and (z[~present] == 0).all()
    assert np.corrcoef(np.log(z[present]), np.log(np.array([s["snr"] for s in samples])[present]))[0, 1] > 0.5


def test_detectable_is_present_with_snr_at_the_rose_limit() -> None:
    faint = Quality(log_jump_minus_one=(-2.0, -1.0), log_dose=(2.5, 4.0))
    samples = [simulate(np.random.default_rng([5, i]), 1024, ["C", "N", "O"], (250.0, 0.3), faint) for i in range(40)]
    present = np.array([s["present"] for s in samples])
    snr = np.array([s["snr"] for s in samples])
    detectable = np.array([s["detectable"] for s in samples])
    np.testing.assert_array_equal(detectable, present & (snr >= ROSE_SNR))
    assert detectable.any() and (present & ~detectable).any()  # both sides of the limit occur


def test_jump_ratio_is_over_the_whole_pre_edge_intensity() -> None:
    # CeO2 from 250 eV: the Ce N4,5 edge (110 eV) lies below the window and its tail is part of the
    # pre-edge intensity at O K (532 eV). The O edge must stand out over that intensity by about its
    # labelled jump ratio, whatever the background exponent (it once drowned under the Ce N tail).
    strong = Quality(log_jump_minus_one=(-0.5, 0.3), log_dose=(4.0, 5.0), spike_probability=0.0, blank_probability=0.0)
    energy = 250.0 + 0.5 * np.arange(2048)
    pre, post = (energy >= 470) & (energy <= 522), (energy >= 545) & (energy <= 565)
    excess = []
    for i in range(30):
        sample = simulate(np.random.default_rng([13, i]), 2048, ["Ce", "O"], (250.0, 0.5), strong)
        slope, intercept = np.polyfit(np.log(energy[pre]), np.log(sample["expected"][pre]), 1)
        background = np.exp(intercept + slope * np.log(energy[post]))
        excess.append(np.mean(sample["expected"][post] / background) - 1)
        assert sample["jump_ratio"][ELEMENTS.index("O")] >= 1.3
    # plural scattering spreads part of the step beyond 565 eV and the edge decays: a floor well below 0.3
    assert min(excess) > 0.1, np.round(excess, 3)


def test_twins_are_absent_elements_the_forward_model_could_draw_with_the_same_edges_in_the_window() -> None:
    """Ce N4,5 (110 eV) alone in 95-125 eV could be Pr's (113 eV) or Nd's (117.5 eV), not La's (99 eV); with
    Ce M4,5 in the window too it is Ce's. Co and Ba L2,3 / M4,5 white lines at 779 and 781 eV are twins, whatever
    another element adds to the window, until Co L1 (926 eV) is in it. O K (sawtooth) and Sb M4,5 (delayed) at
    532 and 528 eV differ in shape."""
    elements = ["Ce", "Pr", "Nd", "La", "Co", "Ba", "O", "Sb"]

    def rows(*sets: str) -> np.ndarray:
        table = np.zeros((len(sets), len(elements)), bool)
        for row, specimen in enumerate(sets):
            table[row, [elements.index(e) for e in specimen.split()]] = True
        return table

    detectable = rows("Ce", "Ce", "Co", "Co O", "Co", "O")
    windows = np.array([[95.0, 125.0], [95.0, 960.0], [760.0, 810.0], [500.0, 810.0], [760.0, 1000.0], [500.0, 560.0]])
    twins = twin_counts(detectable, detectable, windows, elements)
    expected = np.zeros_like(twins)
    expected[0, elements.index("Ce")] = 2
    expected[2, elements.index("Co")] = expected[3, elements.index("Co")] = 1
    np.testing.assert_array_equal(twins, expected)
    assert even_guess_ceiling(twins) == pytest.approx((1 / 3 + 1 + 1 / 2 + 1 / 2 + 1 + 1) / 6)


def test_window_twins_name_what_could_stand_in_for_a_reported_element() -> None:
    assert window_twins("Ce", ["Ce"], 95.0, 125.0, ELEMENTS) == ["Pr", "Nd"]
    assert window_twins("Ce", ["Ce"], 95.0, 960.0, ELEMENTS) == []  # Ce M4,5 (883 eV) settles it
    assert window_twins("Co", ["Co"], 700.0, 802.0, ELEMENTS) == ["Ba"]
    assert window_twins("Co", ["Co", "Ba"], 700.0, 802.0, ELEMENTS) == ["Ba"]  # both reported: still look-alikes
    assert window_twins("Co", ["Co", "Ba"], 700.0, 1000.0, ELEMENTS) == []  # Co L1 (926 eV) is Co's alone
    assert window_twins("Cu", ["Cu"], 900.0, 1050.0, ELEMENTS) == ["Pr"]  # Cu L2,3 beside Pr M4,5 (931 eV)
    assert window_twins("Cu", ["Cu"], 900.0, 1150.0, ELEMENTS) == []  # Cu L1 (1096 eV) is Cu's alone
