"""``map`` keeps the user's trust: a finish cut short resumes, non-finite channels are not acquired, a converted input
belongs to its file, bookkeeping stays out of the maps, Ctrl-C is one line, and arguments are checked first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client
from typer.testing import CliRunner

from eelsbatch.errors import EelsbatchError
from eelsbatch.io import is_complete, open_store, write_store
from eelsbatch.mapping import run_map
from eelsbatch.mapping import _layout
from eelsbatch.model import load_recogniser
from eelsbatch.synth import spectrum_image

MAP_VARIABLES = ("probability", "present", "onset_energy", "edge_intensity", "valid", "sum_spectrum")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """A 12 x 12 core-shell image in 4 chunks of 6 x 6 pixels."""
    counts, _ = spectrum_image("core-shell", (12, 12), seed=4)
    return write_store(counts, tmp_path_factory.mktemp("image") / "image.zarr", chunks=[6, 6], client=dask_client)


@pytest.fixture(scope="module")
def reference(image: Path, shipped_model: Path, tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    output = tmp_path_factory.mktemp("reference") / "maps.zarr"
    run_map(image, output, shipped_model, dask_client, progress=False)
    return output


def assert_same_maps(result: Path, reference: Path) -> None:
    got, expected = zarr.open_group(str(result), mode="r"), zarr.open_group(str(reference), mode="r")
    for name in MAP_VARIABLES:
        np.testing.assert_array_equal(got[name][:], expected[name][:], err_msg=name)
    for key in ("elements_found", "alternatives", "model_sha256", "input_store"):
        assert got.attrs[key] == expected.attrs[key], key


class _Cut(Exception):
    """Stands for a kill, an out-of-memory or a walltime in the middle of the finish."""


@pytest.mark.parametrize("where", ["before marking complete", "after the pass over the blocks"])
def test_a_finish_cut_short_resumes_to_identical_maps(
    where: str, image: Path, reference: Path, shipped_model: Path, tmp_path: Path, dask_client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kill, out-of-memory or walltime in the finish (after the last block) leaves a store that --resume finishes."""
    output = tmp_path / "maps.zarr"

    def cut(*args: object) -> None:
        raise _Cut()

    if where == "before marking complete":
        monkeypatch.setattr(_layout, "mark_complete", cut)
    else:
        monkeypatch.setattr("eelsbatch.mapping._run.finish_maps_store", cut)
    with pytest.raises(_Cut):
        run_map(image, output, shipped_model, dask_client, progress=False)
    monkeypatch.undo()
    assert not is_complete(output)
    assert zarr.open_group(str(output), mode="r").attrs["model_sha256"], "the finish cleared what identifies the run"

    summary = run_map(image, output, shipped_model, dask_client, resume=True, progress=False)

    assert summary.chunks_computed == 0 and is_complete(output)
    assert_same_maps(output, reference)


def test_the_maps_show_no_bookkeeping(reference: Path) -> None:
    maps = xr.open_zarr(reference)
    assert set(maps.data_vars) == set(MAP_VARIABLES)
    assert set(maps.dims) == {"element", "y", "x", "energy"}
    assert bool(maps["valid"].all())


def test_non_finite_channels_are_not_acquired_and_an_unreadable_pixel_is_flagged(
    shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    """One NaN channel in 1/16 of the pixels, a run of infinite channels at the end of others, an all-NaN pixel: the
    pixels keep their elements, the all-NaN one is not judged (``valid`` False), and the CLI says so in one line."""
    counts, _ = spectrum_image("core-shell", (8, 8), seed=6)
    clean = np.asarray(counts.values, dtype=np.float32)
    dirty = clean.copy()
    dirty[::4, ::4, 700] = np.nan  # 1 pixel in 16
    dirty[1, :, -50:] = np.inf
    dirty[7, 7] = np.nan
    stores = {name: write_store(counts.copy(data=values), tmp_path / f"{name}.zarr") for name, values in
              (("clean", clean), ("dirty", dirty))}
    maps = {}
    for name, store in stores.items():
        summary = run_map(store, tmp_path / f"{name}-maps.zarr", shipped_model, dask_client, progress=False)
        maps[name] = open_store(tmp_path / f"{name}-maps.zarr", kind="maps")
    assert summary.invalid_pixels == 1 and "1 of 64 pixels not judged" in summary.invalid_text()
    valid = maps["dirty"]["valid"].values
    assert not valid[7, 7] and valid.sum() == 63
    present = {name: m["present"].values for name, m in maps.items()}
    assert not present["dirty"][:, 7, 7].any() and np.isnan(maps["dirty"]["probability"].values[:, 7, 7]).all()
    judged = valid.copy()
    assert (present["dirty"][:, judged] == present["clean"][:, judged]).mean() > 0.995
    assert np.isfinite(maps["dirty"]["sum_spectrum"].values).all()

    result = subprocess.run([sys.executable, "-m", "eelsbatch.cli", "map", str(stores["dirty"]), str(tmp_path / "cli.zarr"),
                             "--model", str(shipped_model), "--workers", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("eelsbatch: warning")]
    assert len(warnings) == 1 and "1 of 64 pixels not judged" in warnings[0], result.stderr


def test_a_one_nan_channel_spectrum_keeps_its_elements(shipped_model: Path) -> None:
    recogniser = load_recogniser(shipped_model)
    counts, _ = spectrum_image("core-shell", (4, 4), seed=2)
    flat = np.asarray(counts.values, np.float32).reshape(16, -1)
    energy = counts["energy"].values
    broken = flat.copy()
    broken[:, 1000] = np.nan
    clean, dirty = recogniser.predict(flat, energy), recogniser.predict(broken, energy)
    assert dirty["valid"].all()
    np.testing.assert_array_equal(recogniser.decide(dirty["probability"]), recogniser.decide(clean["probability"]))
    assert np.abs(dirty["probability"] - clean["probability"]).max() < 0.05


def _instrument_map(source: Path, output: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", "map", str(source), str(output), "--model", str(model),
                           "--workers", "1", *extra], capture_output=True, text=True)


def test_a_converted_input_is_rebuilt_for_another_source(instrument_dir: Path, shipped_model: Path, tmp_path: Path) -> None:
    """``map B OUT --overwrite`` after ``map A OUT``: B's maps, not A's (the converted input is tied to its file)."""
    first, second = instrument_dir / "EELS_SI.dm4", instrument_dir / "test-EELS_spectrum.dm3"
    output = tmp_path / "maps.zarr"
    assert _instrument_map(first, output, shipped_model).returncode == 0
    shape_first = open_store(output, kind="maps")["present"].shape
    result = _instrument_map(second, output, shipped_model, "--overwrite")
    assert result.returncode == 0, result.stderr
    maps = open_store(output, kind="maps")
    source = open_store(tmp_path / "maps.zarr.input.zarr")
    assert maps["present"].shape[1:] == source["counts"].shape[:-1] != shape_first[1:]
    assert Path(source.attrs["source_file"]).name == second.name


def test_overwrite_refuses_a_folder_that_is_not_an_eelsbatch_store(
    image: Path, shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    theses = tmp_path / "theses"
    theses.mkdir()
    (theses / "chapter1.tex").write_text("precious")
    with pytest.raises(EelsbatchError, match="not an eelsbatch store"):
        run_map(image, theses, shipped_model, dask_client, overwrite=True, progress=False)
    assert (theses / "chapter1.tex").read_text() == "precious"


def test_every_argument_is_checked_before_a_cluster_starts(image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eelsbatch import cli, cluster

    def no_cluster(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was started before the arguments were checked")

    monkeypatch.setattr(cluster, "open_client", no_cluster)
    runner = CliRunner()
    for arguments, problem in (([str(image), str(tmp_path / "missing" / "maps.zarr")], "parent folder does not exist"),
                               ([str(tmp_path / "nothing.dm4"), str(tmp_path / "maps.zarr")], "no such file"),
                               ([str(image), str(image)], "exists")):
        result = runner.invoke(cli.app, ["map", *arguments])
        assert isinstance(result.exception, EelsbatchError) and problem in str(result.exception), result.output


def test_ctrl_c_is_one_line_and_the_map_resumes(image: Path, reference: Path, shipped_model: Path, tmp_path: Path) -> None:
    output = tmp_path / "maps.zarr"
    process = subprocess.Popen([sys.executable, "-m", "eelsbatch.cli", "map", str(image), str(output), "--model",
                                str(shipped_model), "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if zarr.open_group(str(output), mode="r")["progress"]["chunk_done"][:].any():
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("map:") and "\r" not in line]
    assert "Traceback" not in stderr and len(lines) == 1 and "--resume" in lines[0], stderr
    assert not is_complete(output)
    result = subprocess.run([sys.executable, "-m", "eelsbatch.cli", "map", str(image), str(output), "--model",
                             str(shipped_model), "--workers", "1", "--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert_same_maps(output, reference)


def test_negative_counts_from_a_dark_level_subtracted_too_far_keep_their_elements(shipped_model: Path) -> None:
    """Fe-O spectra whose dark level was subtracted to the median of their tail (a quarter of the channels negative):
    Fe and O are still reported (before: clipped cells turned the noise into spikes, and most were lost)."""
    from eelsbatch.synth import generate

    recogniser = load_recogniser(shipped_model)
    data = generate(16, seed=1, channels=2048, composition=["Fe", "O"], window=(400.0, 0.25))
    energy = 400.0 + 0.25 * np.arange(2048)
    raw = data["spectrum"]
    subtracted = raw - np.median(raw[:, -200:], axis=1, keepdims=True)
    assert (subtracted < 0).mean() > 0.2
    columns = [recogniser.elements.index(e) for e in ("Fe", "O")]
    found = {name: recogniser.decide(recogniser.predict(x, energy)["probability"])[:, columns].sum()
             for name, x in (("raw", raw), ("subtracted", subtracted))}
    assert found["subtracted"] >= found["raw"] - 3, found
    positive = recogniser.grid.resample(raw, energy)[0] > 0
    assert positive[:, recogniser.grid.window_cells(energy)].all()  # raw spectra are not lifted: their inputs unchanged


def test_the_demo_scores_the_truth_and_lists_stray_pixels_apart(tmp_path: Path) -> None:
    """An element outside the truth is not an 'IoU 0.000' (which reads as a failure) but a count of stray pixels."""
    result = subprocess.run([sys.executable, "-m", "eelsbatch.cli", "demo", "--out", str(tmp_path / "demo"),
                             "--shape", "24x24", "--workers", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scored = [line.split(":")[0].strip() for line in result.stdout.splitlines() if "IoU" in line]
    assert sorted(scored) == ["C", "Ce", "Fe", "O"], result.stdout
    assert any(line.strip().startswith("stray pixels") for line in result.stdout.splitlines()), result.stdout
    assert "Traceback" not in result.stderr


def test_a_synthetic_image_is_one_acquisition_of_one_specimen() -> None:
    """Within a phase the classic maps vary as in one acquisition (relative spread about 0.5; 3.2 for Fe and 1.5 for
    Ce when every pixel drew its own dose over a decade and its own background exponent over 2-5: speckle)."""
    from eelsbatch.mapping import edge_intensity, integration_window
    from eelsbatch.synth._image import phase_map

    counts, _ = spectrum_image("core-shell", (16, 16), seed=4)
    energy = counts["energy"].values
    flat, phases = np.asarray(counts.values).reshape(-1, energy.size), phase_map("core-shell", (16, 16), 4).reshape(-1)
    for element, phase in (("Fe", 2), ("Ce", 1)):
        values = edge_intensity(flat[phases == phase], energy, integration_window(element, energy))
        assert np.std(values) / np.mean(values) < 0.7, element
