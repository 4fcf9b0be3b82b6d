"""The forward model and `eelsbatch synth`: noise statistics, labels, determinism, layout, bad input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from eelsbatch.cli import main
from eelsbatch.edges import load_edge_table
from eelsbatch.io import open_store
from eelsbatch.readout import boundary_channels, sector_starts
from eelsbatch.synth import STRONG, Quality, generate, simulate, write_spectrum_image, write_training_set


def test_shot_noise_variance_matches_the_mean_at_high_dose() -> None:
    high_dose = Quality(log_dose=(5.0, 5.5), spike_probability=0.0, blank_probability=0.0)
    ratios = []
    for i in range(40):
        sample = simulate(np.random.default_rng([11, i]), 2048, ["Fe", "O"], (450.0, 0.25), high_dose)
        residual = sample["spectrum"] - sample["dark_offset"] - sample["expected"]
        variance = residual.astype(np.float64) ** 2 - sample["read_noise"] ** 2
        ratios.append(variance.sum() / sample["expected"].astype(np.float64).sum())
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.03)


def test_labelled_onsets_sit_at_table_energies_within_the_drawn_shifts() -> None:
    table = load_edge_table()
    samples = generate(300, seed=5)
    checked = 0
    for i in range(300):
        for channel in np.flatnonzero(samples["onset_label"][i] >= 0):
            nominal = samples["energy_offset"][i] + samples["dispersion"][i] * channel
            true = nominal + samples["energy_shift"][i] + samples["dispersion"][i] * samples["dispersion_error"][i] * channel
            onset = table[samples["onset_label"][i][channel]].onset_eV
            assert abs(true - onset) <= 4.0 + samples["dispersion"][i], (i, channel)
            checked += 1
    assert checked > 200


def test_expected_counts_are_finite_and_non_negative() -> None:
    assert np.isfinite(generate(200, seed=9)["spectrum"]).all()
    for i in range(50):
        expected = simulate(np.random.default_rng([9, i]))["expected"]
        assert np.isfinite(expected).all() and (expected >= 0).all()


def test_labels_cover_no_edge_spectra_and_the_detection_limit() -> None:
    samples = generate(400, seed=3)
    assert (~samples["present"].any(axis=1)).sum() > 20  # spectra with no edge at all
    weak = samples["present"] & ~samples["detectable"]
    assert weak.any() and (samples["snr"][weak] < 5).all()
    assert (samples["snr"][samples["detectable"]] >= 5).all()


def test_blank_readouts_carry_no_element_and_leave_the_other_draws_alone() -> None:
    always, never = Quality(blank_probability=1.0, sector_probability=0.0), Quality(blank_probability=0.0, sector_probability=0.0)
    for i in range(20):
        blank = simulate(np.random.default_rng([7, i]), 1024, ["Fe", "O"], (450.0, 0.5), always)
        specimen = simulate(np.random.default_rng([7, i]), 1024, ["Fe", "O"], (450.0, 0.5), never)
        assert not blank["present"].any() and not blank["detectable"].any() and (blank["onset_label"] == -1).all()
        assert np.ptp(blank["expected"]) == 0.0  # flat: no background, no edge
        assert specimen["present"].any() and specimen["dose"] == blank["dose"]  # same draws up to the blank one
    share = np.mean([simulate(np.random.default_rng([8, i]), 256)["present"].any() for i in range(300)])
    assert 0.75 < share < 0.95  # 10 % drawn with no element, 3 % blank, a few with no edge in the window


def test_blank_readouts_of_real_acquisitions_reach_the_levels_of_real_noise_only_images() -> None:
    """Real noise-only images hold a flat 100 counts per channel: the real-acquisition blanks reach that, the default
    draws keep their 0.1-20."""
    from eelsbatch.synth._forward import REAL_ACQUISITIONS

    def levels(quality: Quality) -> np.ndarray:
        blank = dataclasses.replace(quality, blank_probability=1.0, sector_probability=0.0)
        return np.array([simulate(np.random.default_rng([12, i]), 256, ["O"], (450.0, 0.5), blank)["expected"][0]
                         for i in range(200)])

    default, real = levels(Quality()), levels(REAL_ACQUISITIONS)
    assert 0.1 <= default.min() and default.max() <= 20.0
    assert 0.1 <= real.min() and real.max() <= 10 ** 2.5 and (real > 100.0).sum() > 10


@pytest.mark.parametrize("largest_gain", [0.04, 0.08])
def test_readout_sectors_are_gain_steps_at_the_sector_boundaries_and_leave_the_other_draws_alone(largest_gain: float) -> None:
    sectored, plain = Quality(sector_probability=1.0, sector_gain=largest_gain), Quality(sector_probability=0.0)
    seen, steps = set(), []
    for i in range(12):
        a = simulate(np.random.default_rng([9, i]), 1024, ["Fe", "O"], (450.0, 0.5), sectored)
        b = simulate(np.random.default_rng([9, i]), 1024, ["Fe", "O"], (450.0, 0.5), plain)
        sectors = a["readout_sectors"]
        assert b["readout_sectors"] == 1 and sectors in (2, 4)
        seen.add(sectors)
        gain = (a["expected"] / b["expected"]).reshape(sectors, -1)  # one gain per sector, the first 1
        np.testing.assert_allclose(gain, gain[:, :1] * np.ones_like(gain), rtol=1e-5)
        assert gain[0, 0] == pytest.approx(1.0) and (np.abs(gain[:, 0] - 1) <= largest_gain + 1e-6).all() and np.ptp(gain[:, 0]) > 0
        steps.append(np.abs(gain[1:, 0] - 1).max())
        for key in ("present", "detectable", "snr", "onset_label"):  # a detector artefact, not an edge: the labels stay
            np.testing.assert_array_equal(a[key], b[key])
    assert seen == {2, 4} and max(steps) > largest_gain / 2  # the range is used, not only its default


def test_cropped_readouts_step_where_the_longer_detector_axis_has_its_sector_starts() -> None:
    """``cropped_probability``: the spectrum was saved from a longer detector axis, so the gain steps fall at that
    axis's sector starts less the crop offset, not at the saved axis's equal shares; the labels stay."""
    cropped, plain = Quality(sector_probability=1.0, cropped_probability=1.0), Quality(sector_probability=0.0)
    off_the_shares = 0
    for i in range(12):
        a = simulate(np.random.default_rng([10, i]), 1024, ["Fe", "O"], (450.0, 0.5), cropped)
        b = simulate(np.random.default_rng([10, i]), 1024, ["Fe", "O"], (450.0, 0.5), plain)
        assert a["detector_channels"] > 1024 and 0 <= a["readout_offset"] <= a["detector_channels"] - 1024
        starts = sector_starts(a["detector_channels"], a["readout_sectors"]) - a["readout_offset"]
        starts = starts[(starts > 0) & (starts < 1024)]
        steps = np.flatnonzero(np.abs(np.diff(a["expected"] / b["expected"])) > 1e-6) + 1
        np.testing.assert_array_equal(steps, starts)
        off_the_shares += not set(steps.tolist()) <= set(boundary_channels(1024).tolist())
        for key in ("present", "detectable", "snr", "onset_label"):
            np.testing.assert_array_equal(a[key], b[key])
    assert off_the_shares >= 10
    default = simulate(np.random.default_rng([10, 0]), 1024, ["Fe", "O"], (450.0, 0.5), Quality(sector_probability=1.0))
    assert default["detector_channels"] == 1024 and default["readout_offset"] == 0


def test_same_seed_gives_same_data_on_any_workers_and_chunking(dask_client: Client, tmp_path: Path) -> None:
    write_training_set(tmp_path / "two.zarr", 120, 42, dask_client, chunk_size=50)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as one:
        write_training_set(tmp_path / "one.zarr", 120, 42, one, chunk_size=37)
    a, b = (open_store(tmp_path / name, kind="training_set") for name in ("two.zarr", "one.zarr"))
    assert a["spectrum"].chunks[0][0] == 50 and b["spectrum"].chunks[0][0] == 37
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    direct = generate(10, 42, start=100)
    np.testing.assert_array_equal(a["spectrum"].values[100:110], direct["spectrum"])


def test_spectrum_image_has_convert_layout_and_ground_truth(dask_client: Client, tmp_path: Path) -> None:
    store = write_spectrum_image(tmp_path / "si.zarr", "multilayer", (12, 10), 1, dask_client, chunk=6)
    dataset = open_store(store)
    assert dataset["counts"].dims == ("y", "x", "energy")
    assert dataset["energy"].attrs["units"] == "eV" and dataset.attrs["dispersion_eV"] == 0.5
    truth = dataset["truth"]
    assert list(truth["element"].values) == ["La", "Mn", "O", "Ti", "Ni", "Cu"]  # Sr has no edge in 250-1274 eV
    assert truth.sel(element="O").values[:9].all() and not truth.sel(element="O").values[9:].any()
    assert truth.sel(element="Cu").values[9:].all()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n", "0"], "--n must be a positive number of spectra, not 0"),
        (["--n", "-5"], "--n must be a positive number of spectra, not -5"),
        (["--elements", "Fe,Xx"], "unknown element 'Xx'"),
        (["--energy-offset", "5000", "--dispersion", "0.5"], "lies outside the edge table's 50-3000 eV"),
        (["--sector-probability", "1.5"], "--sector-probability must lie between 0 and 1, not 1.5"),
        (["--blank-probability", "-0.1"], "--blank-probability must lie between 0 and 1, not -0.1"),
        (["--cropped-probability", "2"], "--cropped-probability must lie between 0 and 1, not 2.0"),
        (["--dispersion-range", "0.4,0.1"], "--dispersion-range must be LOW,HIGH with 0 < LOW < HIGH, not '0.4,0.1'"),
        (["--dispersion-range", "fine"], "--dispersion-range must be two numbers LOW,HIGH, not 'fine'"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["eelsbatch", "synth", str(tmp_path / "out.zarr"), *arguments])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert stderr.strip().splitlines() == [stderr.strip()] and stderr.startswith("eelsbatch: error: ")
    assert message in stderr and "Traceback" not in stderr
    assert not list(tmp_path.iterdir())


def test_bad_input_through_the_interpreter_is_one_line(tmp_path: Path) -> None:
    result = _cli("synth", str(tmp_path / "out.zarr"), "--n", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_preview_png_is_written_and_the_blank_and_sector_shares_and_dispersion_range_are_knobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dask_client: Client) -> None:
    arguments = ["synth", str(tmp_path / "s.zarr"), "--n", "20", "--chunk-size", "10", "--sector-probability", "1", "--blank-probability", "1",
                 "--cropped-probability", "1", "--sector-gain", "0.08", "--dispersion-range", "0.1,0.2", "--scheduler", dask_client.scheduler.address, "--preview", str(tmp_path / "p.png")]
    monkeypatch.setattr(sys, "argv", ["eelsbatch", *arguments])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code in (0, None)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    store = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert store.sizes["sample"] == 20 and "blank_probability=1.0, sector_probability=1.0, cropped_probability=1.0" in store.attrs["quality"]
    assert (store["detector_channels"].values > 2048).all()  # every one saved cropped from a longer detector axis
    assert set(store["readout_sectors"].values) <= {2, 4}  # every spectrum read out through several ports
    assert not store["elements"].values.any()  # and every one a blank readout
    assert "dispersion_range=(0.1, 0.2)" in store.attrs["quality"] and "sector_gain=0.08" in store.attrs["quality"]
    assert ((store["dispersion"].values >= 0.1) & (store["dispersion"].values <= 0.2)).all()


def test_the_real_acquisition_cases_are_off_by_default_and_leave_the_default_draws_alone() -> None:
    """Step 8's shares default to 0 and then draw nothing: a seed gives the spectra it gave before they existed."""
    import dataclasses

    from eelsbatch.synth._forward import DEFAULT_QUALITY

    unset = dataclasses.replace(DEFAULT_QUALITY, specimen_probability=0.0, narrow_probability=0.0)
    for i in range(10):
        a, b = simulate(np.random.default_rng([12, i])), simulate(np.random.default_rng([12, i]), quality=unset)
        np.testing.assert_array_equal(a["spectrum"], b["spectrum"])
        assert a["acquired_channels"] == 2048 and a["background_subtracted"] == 0 and np.isfinite(a["spectrum"]).all()


def test_an_onset_just_below_the_window_leaves_its_element_present_but_not_required() -> None:
    """O K at 532 eV: a window from 542 eV holds its near-edge structure (present, unscored); one from 574 eV does not
    (axis and chemical shifts within 9 eV)."""
    from eelsbatch.synth._elements import ELEMENTS
    from eelsbatch.synth._forward import NEAR_EDGE_EV

    oxygen = ELEMENTS.index("O")
    plain = Quality(blank_probability=0.0, spike_probability=0.0, sector_probability=0.0)
    for start, present in ((532.0 + 10.0, True), (532.0 + NEAR_EDGE_EV + 12.0, False)):
        for i in range(10):
            sample = simulate(np.random.default_rng([19, i]), 512, ["O"], (start, 0.1), plain)
            assert sample["present"][oxygen] == present and not sample["detectable"][oxygen], (start, i)
            assert (sample["onset_label"] == -1).all()  # no onset in the window: nothing to tag


def test_narrow_windows_save_a_few_tens_of_eV_around_an_edge_the_rest_not_acquired() -> None:
    narrow = Quality(narrow_probability=1.0, blank_probability=0.0, spike_probability=0.0)
    before_onset = []
    for i in range(30):
        sample = simulate(np.random.default_rng([13, i]), 2048, ["Fe", "O"], (450.0, 0.05), narrow)
        saved = np.isfinite(sample["spectrum"])
        low, high = np.flatnonzero(saved)[[0, -1]]
        assert saved[low:high + 1].all() and saved.sum() == sample["acquired_channels"] >= 96  # one run, NaN around it
        assert (sample["onset_label"][~saved] == -1).all()  # an edge outside the saved window is not labelled
        labelled = np.flatnonzero(sample["onset_label"] >= 0)
        if labelled.size:
            before_onset.append((labelled[0] - low) * 0.05)
    assert len(before_onset) > 20 and min(before_onset) >= 0 and np.median(before_onset) < 100  # saved from before an edge


def test_background_subtracted_spectra_have_a_pre_edge_near_zero_and_negative_counts() -> None:
    from eelsbatch.synth._elements import ELEMENTS

    subtracted = Quality(subtracted_probability=1.0, blank_probability=0.0, spike_probability=0.0, sector_probability=0.0)
    deconvolved = 0
    for i in range(20):
        sample = simulate(np.random.default_rng([14, i]), 1024, ["Fe"], (650.0, 0.1), subtracted)
        pre_edge = slice(0, 400)  # 650-690 eV, below Fe L3 at 708 eV
        assert abs(np.median(sample["spectrum"][pre_edge])) < 0.05 * np.median(sample["expected"][pre_edge])
        assert (sample["spectrum"][pre_edge] < 0).any()
        standard_error = np.sqrt(np.median(sample["expected"][pre_edge]) / 324)
        assert np.median(sample["spectrum"][700:]) > np.median(sample["spectrum"][pre_edge]) + 10 * standard_error  # the edge stays
        assert sample["present"][ELEMENTS.index("Fe")]  # and is labelled
        deconvolved += sample["background_subtracted"] == 2
    assert 3 <= deconvolved <= 17  # half of them deconvolved too


def test_miscalibrated_axes_are_off_by_up_to_twenty_eV_and_stay_labelled_where_the_edges_fall() -> None:
    miscalibrated = Quality(miscalibrated_probability=1.0, blank_probability=0.0)
    table = load_edge_table()
    shifts = []
    for i in range(200):
        sample = simulate(np.random.default_rng([15, i]), 1024, ["Ti", "O"], (400.0, 0.25), miscalibrated)
        shifts.append(sample["energy_shift"])
        assert abs(sample["dispersion_error"]) <= 0.03
        for channel in np.flatnonzero(sample["onset_label"] >= 0):
            true = 400.0 + sample["energy_shift"] + 0.25 * (1 + sample["dispersion_error"]) * channel
            assert abs(true - table[sample["onset_label"][channel]].onset_eV) <= 4.0 + 0.25
    assert max(np.abs(shifts)) > 15 and max(np.abs(shifts)) <= 20 and np.mean(np.abs(shifts) > 5) > 0.5


def test_a_miscalibrated_wide_window_is_stretched_by_up_to_three_per_cent_or_twenty_eV_at_its_far_end() -> None:
    """A spectrum image seen off by 11 eV at O K and 21 eV at Ni L3 has a dispersion error of about 3 %: over a 614 eV
    window (2048 channels at 0.3 eV) the far end moves by up to 18 eV; over 2 keV by at most 20 eV."""
    from eelsbatch.synth._forward import _miscalibration

    rng = np.random.default_rng(19)
    for width, largest in ((614.0, 0.03 * 614.0), (2048.0, 20.0)):
        stretch = np.array([abs(_miscalibration(rng, width)[1]) * width for _ in range(300)])
        assert 0.8 * largest < stretch.max() <= largest


def test_the_store_records_the_share_of_each_element_in_its_compositions() -> None:
    from eelsbatch.specimens import specimen_share
    from eelsbatch.synth._elements import ELEMENTS
    from eelsbatch.synth._forward import DEFAULT_QUALITY, REAL_ACQUISITIONS, composition_share, draw_composition, draw_specimen

    index = {element: i for i, element in enumerate(ELEMENTS)}
    rng = np.random.default_rng(16)
    for draw, quality in ((draw_composition, DEFAULT_QUALITY), (draw_specimen, Quality(specimen_probability=1.0))):
        counts = np.zeros(len(ELEMENTS))
        for _ in range(20000):
            counts[[index[element] for element in draw(rng) if element in index]] += 1
        np.testing.assert_allclose(counts / 20000, composition_share(quality), atol=0.012)
    np.testing.assert_allclose(composition_share(Quality(specimen_probability=1.0)), specimen_share(ELEMENTS))
    real = composition_share(REAL_ACQUISITIONS)
    assert real[index["O"]] > 0.4 > composition_share(DEFAULT_QUALITY)[index["O"]]  # O in most real specimens
    np.testing.assert_array_equal(composition_share(DEFAULT_QUALITY, composition=["Fe", "O"]) > 0,
                                  [element in ("Fe", "O") for element in ELEMENTS])


def test_lithium_battery_specimens_carry_an_unlabelled_li_k_edge_beyond_the_four_listed_elements() -> None:
    """NMC (Li, Ni, Mn, Co, O): Li is drawn after the four listed elements; in Li4Ti5O12 its K edge (55 eV) is in the counts,
    but no label names it; a specimen without Li draws none."""
    from eelsbatch.specimens import UNLISTED
    from eelsbatch.synth._elements import ELEMENTS
    from eelsbatch.synth._forward import draw_specimen

    assert not UNLISTED & set(ELEMENTS)
    rng = np.random.default_rng(18)
    drawn = [draw_specimen(rng) for _ in range(3000)]
    with_li = [c for c in drawn if "Li" in c]
    assert 0.03 < len(with_li) / len(drawn) < 0.2
    assert all(c[-1] == "Li" and len(c) - 1 <= 4 for c in with_li)
    assert any(c[:4] == ["Ni", "Mn", "Co", "O"] for c in with_li)
    quality = Quality(blank_probability=0.0, sector_probability=0.0, spike_probability=0.0, log_jump_minus_one=(0.3, 0.7),
                      log_dose=(5.0, 5.5), thickness=(0.1, 0.2))
    energy = 40.0 + 0.05 * np.arange(1024)
    below, above = (energy > 48) & (energy < 53), (energy > 57) & (energy < 62)
    for composition in (["Ti", "O", "Li"], ["Ti", "O"]):
        sample = simulate(np.random.default_rng(3), 1024, composition, (40.0, 0.05), quality)
        step = sample["expected"][above].mean() / sample["expected"][below].mean()
        assert not sample["present"].any()  # Ti L2,3 and O K far above the window
        assert (step > 1.0) == ("Li" in composition), (composition, step)  # the power law falls; Li K raises it


def test_light_l23_edges_drawn_as_measured_have_threshold_peaks_above_their_continuum() -> None:
    """Si L2,3 (99 eV): as measured, the first 9 eV peak at several times the continuum just beyond; the default shape
    (a short delayed rise) does not."""
    from eelsbatch.synth._forward import _light_l23_shape, _shape

    energy = np.arange(80.0, 250.0, 0.1)
    near, beyond = (energy >= 99) & (energy <= 108), (energy >= 109) & (energy <= 112)

    def ratios(shape) -> np.ndarray:
        profiles = [shape(np.random.default_rng(k)) for k in range(200)]
        return np.array([p[near].max() / p[beyond].mean() for p in profiles])

    assert np.median(ratios(lambda rng: _light_l23_shape(energy, [99.0, 99.6], rng))) > 3.0
    assert np.percentile(ratios(lambda rng: _shape("L2,3", 14, energy, [99.0, 99.6], rng)), 95) < 2.0


def test_the_recorded_share_of_a_pool_with_no_real_specimen_is_that_of_the_default_draw_it_falls_back_to() -> None:
    from eelsbatch.specimens import specimens_of
    from eelsbatch.synth._forward import composition_share, draw_specimen

    pool = ["Pr", "Eu", "Tb", "Dy", "Er"]
    assert not specimens_of(pool)
    rng = np.random.default_rng(17)
    counts = np.zeros(len(pool))
    for _ in range(20000):
        counts[[pool.index(element) for element in draw_specimen(rng, pool)]] += 1
    np.testing.assert_allclose(counts / 20000, composition_share(Quality(specimen_probability=1.0), pool), atol=0.012)


def test_a_narrow_window_is_subtracted_of_the_tails_of_edges_below_it_on_the_detector() -> None:
    """Ti L2,3 (456 eV) on the detector, a narrow window saved from above it before O K (532 eV): the author's pre-edge
    fit takes in the Ti tail, so the saved pre-edge is near zero, as for an edge below the detector."""
    quality = Quality(narrow_probability=1.0, subtracted_probability=1.0, blank_probability=0.0, spike_probability=0.0,
                      sector_probability=0.0, log_jump_minus_one=(0.3, 0.7))
    checked = 0
    for i in range(200):
        sample = simulate(np.random.default_rng([18, i]), 1024, ["Ti", "O"], (400.0, 0.25), quality)
        saved = np.flatnonzero(np.isfinite(sample["spectrum"]))
        energy = 400.0 + 0.25 * np.arange(1024)
        pre_edge = saved[(energy[saved] > 490.0) & (energy[saved] < 525.0)]
        if energy[saved[0]] < 490.0 or len(pre_edge) < 40:
            continue  # windows from below Ti's white lines, or with too little of O's pre-edge
        checked += 1
        level = np.median(sample["expected"][pre_edge])
        assert abs(np.median(sample["spectrum"][pre_edge])) < 0.05 * level, i
    assert checked >= 5


def test_real_acquisitions_is_a_knob_the_other_knobs_apply_on_top_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dask_client: Client) -> None:
    arguments = ["synth", str(tmp_path / "s.zarr"), "--n", "40", "--chunk-size", "20", "--real-acquisitions",
                 "--dispersion-range", "0.02,0.05", "--scheduler", dask_client.scheduler.address]
    monkeypatch.setattr(sys, "argv", ["eelsbatch", *arguments])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code in (0, None)
    store = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert "specimen_probability=0.5" in store.attrs["quality"] and "dispersion_range=(0.02, 0.05)" in store.attrs["quality"]
    assert ((store["dispersion"].values >= 0.02) & (store["dispersion"].values <= 0.05)).all()
    assert store.attrs["composition_share"]["O"] > 0.4  # the training prior a model trained on it learns
    assert "30 eV below" in store.attrs["present_rule"]  # what its labels mean, so that a store labelled otherwise is told apart
    narrow = store["acquired_channels"].values < 2048
    assert narrow.any() and (np.isnan(store["spectrum"].values).any(axis=1) == narrow).all()
