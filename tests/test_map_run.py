"""``map`` end to end on real Dask clusters and real Zarr stores: accuracy against synthetic ground truth,
values against the recogniser applied directly, 4D inputs, a worker killed mid-run, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
import zarr
from distributed import Client, LocalCluster

from eelsbatch.errors import EelsbatchError
from eelsbatch.io import is_complete, open_store, write_store
from eelsbatch.mapping import edge_intensity, integration_onset, integration_window, run_map
from eelsbatch.model import load_recogniser
from eelsbatch.synth import STRONG, simulate, spectrum_image, write_spectrum_image

MAP_VARIABLES = ("probability", "present", "onset_energy", "edge_intensity")
IOU_GOAL = 0.9



@pytest.fixture(scope="session")
def chunked_image(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """A 24 x 24 multilayer spectrum image stored in 16 chunks of 6 x 6 pixels (16 map tasks)."""
    counts, truth = spectrum_image("multilayer", (24, 24), seed=5)
    path = tmp_path_factory.mktemp("chunked") / "multilayer.zarr"
    return write_store(counts, path, chunks=[6, 6], extra={"truth": truth}, client=dask_client)


@pytest.fixture(scope="session")
def reference_maps(chunked_image: Path, shipped_model: Path, tmp_path_factory: pytest.TempPathFactory,
                   dask_client: Client) -> Path:
    """An uninterrupted map run of ``chunked_image``."""
    output = tmp_path_factory.mktemp("reference") / "maps.zarr"
    run_map(chunked_image, output, shipped_model, dask_client, progress=False)
    return output


def assert_same_maps(result: Path, reference: Path) -> None:
    """Every map variable and the sum spectrum identical, NaN where NaN."""
    got, expected = zarr.open_group(str(result), mode="r"), zarr.open_group(str(reference), mode="r")
    for name in (*MAP_VARIABLES, "sum_spectrum"):
        np.testing.assert_array_equal(got[name][:], expected[name][:], err_msg=name)
    assert got.attrs["elements_found"] == expected.attrs["elements_found"]


def test_a_finished_maps_store_opens_with_plain_open_zarr(reference_maps: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(reference_maps)
    xr.testing.assert_identical(plain, xr.open_zarr(reference_maps, consolidated=False))
    assert {*MAP_VARIABLES, "sum_spectrum"} <= set(plain.data_vars) and plain.attrs["elements_found"]


def _done_chunks(output: Path) -> int:
    try:
        return int(np.count_nonzero(zarr.open_group(str(output), mode="r")["progress"]["chunk_done"][:]))
    except Exception:  # noqa: BLE001 - polled while the map run creates the store: not there yet
        return 0


@pytest.fixture(scope="module")
def core_shell(shipped_model: Path, tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> tuple[Path, Path, object]:
    """A 48 x 48 core-shell image from ``synth --spectrum-image``'s writer, its maps, and the run summary."""
    folder = tmp_path_factory.mktemp("core-shell")
    image = write_spectrum_image(folder / "core-shell.zarr", "core-shell", (48, 48), seed=11, client=dask_client)
    summary = run_map(image, folder / "maps.zarr", shipped_model, dask_client, progress=False)
    return image, folder / "maps.zarr", summary


def _iou(image: Path, maps: Path) -> dict[str, float]:
    truth, present = open_store(image)["truth"], open_store(maps, kind="maps")["present"]
    scores = {}
    for element in map(str, truth["element"].values):
        predicted, actual = present.sel(element=element).values, truth.sel(element=element).values
        scores[element] = float(np.logical_and(predicted, actual).sum() / np.logical_or(predicted, actual).sum())
    print("IoU of present with truth:", {e: round(s, 3) for e, s in scores.items()})
    return scores


def test_maps_follow_the_ground_truth_of_a_synthetic_spectrum_image(core_shell) -> None:
    image, output, summary = core_shell
    scores = _iou(image, output)
    assert all(score >= 0.5 for score in scores.values()), scores  # every element mapped where it is, mostly
    assert set(summary.elements_found) == set(scores), "an element found that is in no phase, or a true one missed"
    assert summary.spectra == 48 * 48 and summary.chunks_computed == summary.chunks_total == 9
    assert summary.alternatives == {}  # C K, O K, Fe L2,3 and Ce M4,5 have no look-alike in 250-1274 eV

    # The classic edge-intensity map is bright where the element is and dark elsewhere.
    truth, maps = open_store(image)["truth"], open_store(output, kind="maps")
    for element in summary.elements_found:
        intensity, actual = maps["edge_intensity"].sel(element=element).values, truth.sel(element=element).values
        if integration_onset(element, maps["energy"].values) is not None:
            assert np.nanmedian(intensity[actual]) > 5 * abs(np.nanmedian(intensity[~actual])), element


def test_maps_reach_the_iou_goal_for_every_element(core_shell) -> None:
    image, output, _ = core_shell
    scores = _iou(image, output)
    assert all(score >= IOU_GOAL for score in scores.values()), scores


def test_a_found_element_names_the_elements_whose_edges_look_the_same_in_the_window(
    shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    """Co L2,3 and Ba M4,5 white lines (779 and 781 eV) alone in 700-802 eV: a map of either is a map of both, and
    the maps store, the summary, the CLI line and the plot say so. The core-shell image's C, O, Fe, Ce have none."""
    window = (700.0, 0.05)
    spectra = np.stack([simulate(np.random.default_rng([17, i]), 2048, ["Co"], window, STRONG)["spectrum"] for i in range(16)])
    energy = window[0] + window[1] * np.arange(2048)
    counts = xr.DataArray(spectra.reshape(4, 4, 2048), dims=("y", "x", "energy"),
                          coords={"energy": ("energy", energy, {"units": "eV"})})
    store = write_store(counts, tmp_path / "cobalt.zarr")
    summary = run_map(store, tmp_path / "maps.zarr", shipped_model, dask_client, progress=False)
    reported = set(summary.elements_found) & {"Co", "Ba"}
    assert reported, summary.elements_found
    assert summary.alternatives == {element: ["Ba" if element == "Co" else "Co"] for element in reported}
    assert json.loads(zarr.open_group(str(tmp_path / "maps.zarr"), mode="r").attrs["alternatives"]) == summary.alternatives
    assert "Co (or Ba)" in summary.found_text() or "Ba (or Co)" in summary.found_text()


def test_map_values_equal_the_recogniser_applied_directly(
    chunked_image: Path, reference_maps: Path, shipped_model: Path
) -> None:
    counts = open_store(chunked_image)["counts"]
    energy = counts["energy"].values
    flat = counts.values.reshape(-1, energy.size)
    recogniser = load_recogniser(shipped_model)
    direct = recogniser.predict(flat, energy)
    maps = open_store(reference_maps, kind="maps")
    elements = list(map(str, maps["element"].values))
    assert elements == recogniser.elements
    assert maps["probability"].dims == ("element", "y", "x")
    xr.testing.assert_identical(maps["x"], counts["x"])  # coordinates and their units carried over

    probability = maps["probability"].values.reshape(len(elements), -1).T
    np.testing.assert_allclose(probability, direct["probability"], rtol=1e-4, atol=1e-5)
    present = maps["present"].values.reshape(len(elements), -1).T
    np.testing.assert_array_equal(present, recogniser.decide(probability))  # threshold and coincident-edge rule
    onset = maps["onset_energy"].values.reshape(len(elements), -1).T
    assert np.all(np.isnan(onset[~present]))
    np.testing.assert_allclose(onset[present], direct["onset_energy"][present], rtol=1e-4)

    found = json.loads(maps.attrs["elements_found"])
    intensity = maps["edge_intensity"].values.reshape(len(elements), -1).T
    for index, element in enumerate(elements):
        window = integration_window(element, energy, found)  # clear of the other found elements' edges
        if element in found and window is not None:
            np.testing.assert_allclose(intensity[:, index], edge_intensity(flat, energy, window), rtol=1e-5, atol=1e-3)
        else:
            assert np.all(np.isnan(intensity[:, index])), f"{element} is found nowhere but has an intensity map"
    np.testing.assert_allclose(maps["sum_spectrum"].values, flat.sum(axis=0, dtype=np.float64), rtol=1e-6)
    assert maps.attrs["model_sha256"] == recogniser.sha256 and maps.attrs["model_name"] == recogniser.name
    assert maps.attrs["input_store"] == str(chunked_image.resolve()) and maps.attrs["eelsbatch_version"]


def test_a_4d_input_gives_4d_maps_in_the_same_pixel_order(
    shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    counts, _ = spectrum_image("grains", (8, 6), seed=2)
    series = xr.DataArray(
        counts.data.reshape(2, 4, 6, -1), dims=("t", "y", "x", "energy"),
        coords={"t": ("t", [0.0, 1.5], {"units": "s"}), "y": counts["y"][:4], "x": counts["x"], "energy": counts["energy"]},
        attrs=counts.attrs,
    )
    store = write_store(series, tmp_path / "series.zarr", chunks=[1, 2, 3], client=dask_client)
    flat_store = write_store(counts, tmp_path / "flat.zarr", chunks=[8, 6], client=dask_client)
    run_map(store, tmp_path / "series-maps.zarr", shipped_model, dask_client, progress=False)
    run_map(flat_store, tmp_path / "flat-maps.zarr", shipped_model, dask_client, progress=False)

    series_maps = open_store(tmp_path / "series-maps.zarr", kind="maps")
    flat_maps = open_store(tmp_path / "flat-maps.zarr", kind="maps")
    assert series_maps["probability"].dims == ("element", "t", "y", "x")
    assert series_maps["t"].attrs["units"] == "s"
    np.testing.assert_allclose(
        series_maps["probability"].values.reshape(-1, 48), flat_maps["probability"].values.reshape(-1, 48), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(series_maps["sum_spectrum"].values, flat_maps["sum_spectrum"].values, rtol=1e-6)


class _WorkerKiller(threading.Thread):
    """Kills one worker process (SIGKILL) once the first chunk of ``output`` is done."""

    def __init__(self, output: Path, pids: list[int], total: int) -> None:
        super().__init__(daemon=True)
        self.output, self.pids, self.total = output, pids, total
        self.done_at_kill: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            done = _done_chunks(self.output)
            if done >= 1:
                psutil.Process(self.pids[0]).kill()
                self.done_at_kill = done
                return
            time.sleep(0.01)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    chunked_image: Path, reference_maps: Path, shipped_model: Path, tmp_path: Path
) -> None:
    output = tmp_path / "maps.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
        killer = _WorkerKiller(output, pids, total=16)
        killer.start()
        try:
            summary = run_map(chunked_image, output, shipped_model, client, progress=False)
        finally:
            killer.stop.set()
            killer.join()
        assert killer.done_at_kill is not None and killer.done_at_kill < 16, "the worker was not killed mid-run"
        assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE
    assert summary.chunks_computed == summary.chunks_total == 16
    assert is_complete(output)
    assert_same_maps(output, reference_maps)


def test_resume_after_the_map_process_is_killed_computes_only_the_missing_chunks(
    chunked_image: Path, reference_maps: Path, shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    output = tmp_path / "maps.zarr"
    command = [sys.executable, "-m", "eelsbatch.cli", "map", str(chunked_image), str(output),
               "--model", str(shipped_model), "--workers", "1"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _done_chunks(output) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the map command, its scheduler and its worker
        process.wait()
    done_before = _done_chunks(output)
    assert 2 <= done_before < 16, f"interrupt came too late or too early ({done_before} of 16 chunks done)"
    assert not is_complete(output), "an interrupted map looks complete"

    summary = run_map(chunked_image, output, shipped_model, dask_client, resume=True, progress=False)

    assert summary.chunks_total == 16 and summary.chunks_computed == 16 - done_before
    assert is_complete(output)
    assert_same_maps(output, reference_maps)


def test_an_existing_output_is_refused_and_a_finished_one_is_not_recomputed(
    chunked_image: Path, reference_maps: Path, shipped_model: Path, dask_client: Client
) -> None:
    before = {path: path.stat().st_mtime_ns for path in reference_maps.rglob("*") if path.is_file()}
    with pytest.raises(EelsbatchError, match="exists"):
        run_map(chunked_image, reference_maps, shipped_model, dask_client, progress=False)
    summary = run_map(chunked_image, reference_maps, shipped_model, dask_client, resume=True, progress=False)
    assert summary.chunks_computed == 0 and summary.chunks_total == 16
    assert before == {path: path.stat().st_mtime_ns for path in reference_maps.rglob("*") if path.is_file()}


def test_a_known_readout_layout_reaches_the_workers(
    tmp_path: Path, shipped_model: Path, dask_client: Client
) -> None:
    """A store's recorded sector starts (``convert --sector-starts``), or ``map``'s own, are what the workers mark:
    the maps equal the recogniser given that layout, and differ from the equal-share default."""
    counts, _ = spectrum_image("multilayer", (6, 8), seed=9)
    step = 700  # a readout step where no equal share of the 2048 channels starts
    counts = counts.copy(data=np.where(np.arange(counts.sizes["energy"]) >= step, 1.03, 1.0) * counts.values)
    counts.attrs["readout_sector_starts"] = [step]
    store = write_store(counts, tmp_path / "stepped.zarr")
    flat, energy = counts.values.reshape(-1, counts.sizes["energy"]), counts["energy"].values
    recogniser = load_recogniser(shipped_model)
    for given, layout in ((None, [step]), ([], [])):
        output = tmp_path / f"maps-{len(layout)}.zarr"
        run_map(store, output, shipped_model, dask_client, progress=False, sector_starts=given)
        probability = open_store(output, kind="maps")["probability"].values.reshape(len(recogniser.elements), -1).T
        expected = recogniser.predict(flat, energy, sector_starts=layout)["probability"]
        np.testing.assert_allclose(probability, expected, rtol=1e-4, atol=1e-5)
        assert np.abs(probability - recogniser.predict(flat, energy)["probability"]).max() > 1e-3
        assert json.loads(zarr.open_group(str(output), mode="r").attrs["parameters"])["sector_starts"] == layout
