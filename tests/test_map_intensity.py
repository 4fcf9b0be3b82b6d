"""Classic edge-intensity maps: power-law background fit and integration, on spectra with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from eelsbatch.edges import onset
from eelsbatch.mapping import edge_intensity, integration_onset, integration_window

ENERGY = 200.0 + 0.5 * np.arange(2048)  # 200-1223.5 eV: C K to Ce M4,5 with their pre-edge windows


def _post_edge_channels(edge_onset: float) -> int:
    """Channels of ENERGY in the documented integration window [onset, onset + max(50 eV, 10 % of onset)]."""
    width = max(50.0, 0.1 * edge_onset)
    return int(np.count_nonzero((ENERGY >= edge_onset) & (ENERGY <= edge_onset + width)))


def _power_law_with_step(amplitude: np.ndarray, exponent: np.ndarray, step: np.ndarray, edge_onset: float) -> np.ndarray:
    """Noise-free spectra ``A * E**-r`` plus a flat step of ``step`` counts per channel from ``edge_onset`` on."""
    background = amplitude[:, None] * ENERGY[None, :] ** -exponent[:, None]
    return background + step[:, None] * (ENERGY >= edge_onset)[None, :]


@pytest.mark.parametrize(("element", "family"), [("C", "K"), ("O", "K"), ("Fe", "L2,3"), ("Ce", "M4,5")])
def test_step_edge_integral_is_exact_for_every_pixel(element: str, family: str) -> None:
    edge_onset = onset(element, family)
    assert integration_onset(element, ENERGY) == pytest.approx(edge_onset)
    rng = np.random.default_rng(3)
    amplitude = 10 ** rng.uniform(8, 11, 50)
    exponent = rng.uniform(2.0, 4.5, 50)
    step = rng.uniform(0.0, 200.0, 50)
    counts = _power_law_with_step(amplitude, exponent, step, edge_onset)

    intensity = edge_intensity(counts, ENERGY, edge_onset)

    expected = step * _post_edge_channels(edge_onset)
    assert intensity.shape == (50,)
    np.testing.assert_allclose(intensity, expected, rtol=1e-5, atol=1e-2 * _post_edge_channels(edge_onset))


def test_no_edge_gives_zero_and_a_bigger_step_gives_proportionally_more() -> None:
    edge_onset = onset("O", "K")
    counts = _power_law_with_step(np.full(3, 1e10), np.full(3, 3.0), np.array([0.0, 10.0, 30.0]), edge_onset)
    intensity = edge_intensity(counts, ENERGY, edge_onset)
    assert abs(intensity[0]) < 1e-2
    assert intensity[2] == pytest.approx(3 * intensity[1], rel=1e-5)


def test_zero_and_negative_pre_edge_channels_are_left_out_of_the_fit() -> None:
    edge_onset = onset("Fe", "L2,3")
    counts = _power_law_with_step(np.array([1e10, 1e10]), np.array([3.0, 3.0]), np.array([50.0, 50.0]), edge_onset)
    pre = np.flatnonzero((ENERGY >= 0.85 * edge_onset) & (ENERGY <= 0.98 * edge_onset))
    counts[1, pre[::3]] = 0.0  # dead channels
    counts[1, pre[1::7]] = -4.0  # dark-subtracted noise below zero
    intensity = edge_intensity(counts, ENERGY, edge_onset)
    np.testing.assert_allclose(intensity[1], intensity[0], rtol=1e-6)
    np.testing.assert_allclose(intensity[0], 50.0 * _post_edge_channels(edge_onset), rtol=1e-5)


def test_a_pixel_without_positive_pre_edge_counts_gives_nan_not_an_error() -> None:
    edge_onset = onset("O", "K")
    counts = _power_law_with_step(np.array([1e10, 1e10]), np.array([3.0, 3.0]), np.array([5.0, 5.0]), edge_onset)
    counts[1, ENERGY < edge_onset] = 0.0
    intensity = edge_intensity(counts, ENERGY, edge_onset)
    assert np.isfinite(intensity[0]) and np.isnan(intensity[1])


def test_noisy_edges_are_measured_without_bias() -> None:
    edge_onset = onset("O", "K")
    rng = np.random.default_rng(0)
    expected = _power_law_with_step(np.full(400, 3e11), np.full(400, 3.0), np.full(400, 40.0), edge_onset)
    intensity = edge_intensity(rng.poisson(expected).astype(np.float32), ENERGY, edge_onset)
    truth = 40.0 * _post_edge_channels(edge_onset)
    assert np.mean(intensity) == pytest.approx(truth, rel=0.05)


def test_windows_come_from_the_edge_table_and_must_fit_in_the_data() -> None:
    assert integration_onset("Cu", ENERGY) == pytest.approx(onset("Cu", "L2,3"))
    assert integration_onset("Si", ENERGY) is None  # Si L2,3 (99 eV) below and Si K (1839 eV) above the window
    assert integration_onset("Mo", ENERGY[ENERGY >= 215.0]) is None  # Mo M4,5 (227 eV): pre-edge mostly cut, L3 beyond
    assert integration_onset("Au", ENERGY) == pytest.approx(onset("Au", "N4,5"))  # N4,5 is a major family too
    # C K's pre-edge window (241-278 eV) may be cut by the start of the data, but not by more than half.
    assert integration_onset("C", ENERGY[ENERGY >= 250.0]) == pytest.approx(onset("C", "K"))
    assert integration_onset("C", ENERGY[ENERGY > 262.0]) is None


def test_a_pre_edge_window_cut_by_the_start_of_the_data_still_gives_the_exact_integral() -> None:
    edge_onset = onset("C", "K")
    energy = ENERGY[ENERGY >= 250.0]
    counts = 1e10 * energy[None, :] ** -3.0 + 25.0 * (energy >= edge_onset)[None, :]
    post = np.count_nonzero((energy >= edge_onset) & (energy <= edge_onset + 50.0))
    np.testing.assert_allclose(edge_intensity(counts, energy, edge_onset), [25.0 * post], rtol=1e-5)


def test_windows_move_clear_of_the_other_found_elements_edges() -> None:
    """An analyst's windows: Cu's integration stops at Zn L3 (1020 eV); Fe's pre-edge fit starts 3 % above Mn L2;
    O's default windows hold no other edge; Zn's pre-edge fit would have to start 3 % above Cu L2 (951 eV), leaving
    20 eV of its 133: no clean window (the real CuZn image's case)."""
    energy = 400.0 + 0.5 * np.arange(2048)
    alone = integration_window("Cu", energy)
    beside_zn = integration_window("Cu", energy, ["Cu", "Zn"])
    assert alone.post[1] == pytest.approx(onset("Cu", "L2,3") * 1.1) and alone.pre == beside_zn.pre
    assert beside_zn.post == (pytest.approx(onset("Cu", "L2,3")), pytest.approx(onset("Zn", "L2,3")))
    assert integration_window("O", energy, ["O", "Fe"]) == integration_window("O", energy)
    beside_mn = integration_window("Fe", energy, ["O", "Fe", "Mn"])
    assert beside_mn.pre == (pytest.approx(651.4 * 1.03, abs=0.5), pytest.approx(integration_window("Fe", energy).pre[1]))
    assert integration_window("Zn", energy) is not None and integration_window("Zn", energy, ["Cu"]) is None
