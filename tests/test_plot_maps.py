"""``eelsbatch plot``: a PNG of the element maps and the sum spectrum, from a real maps store."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import zarr
from distributed import Client

from eelsbatch.cli import main
from eelsbatch.io import mark_incomplete, write_store
from eelsbatch.mapping import run_map
from eelsbatch.synth import spectrum_image


@pytest.fixture(scope="module")
def small_maps(tmp_path_factory: pytest.TempPathFactory, shipped_model: Path, dask_client: Client) -> Path:
    """Maps of a 12 x 12 core-shell spectrum image made with the shipped model."""
    folder = tmp_path_factory.mktemp("plot")
    counts, truth = spectrum_image("core-shell", (12, 12), seed=4)
    image = write_store(counts, folder / "image.zarr", chunks=[12, 12], extra={"truth": truth}, client=dask_client)
    run_map(image, folder / "maps.zarr", shipped_model, dask_client, progress=False)
    return folder / "maps.zarr"


def _plot(maps: Path, png: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run the ``eelsbatch plot`` entry point in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["eelsbatch", "plot", str(maps), "--out", str(png)])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = exited.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plot_writes_one_map_row_per_found_element_and_the_sum_spectrum(
    small_maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = tmp_path / "maps.png"
    code, out, err = _plot(small_maps, png, capsys, monkeypatch)
    assert code == 0, err
    assert str(png) in out
    picture = matplotlib.image.imread(png)
    found = json.loads(zarr.open_group(str(small_maps), mode="r").attrs["elements_found"])
    assert found, "the shipped model found nothing in a strong synthetic image"
    height, width = picture.shape[:2]
    assert width >= 600 and height > 250 * len(found), (picture.shape, found)  # a row of maps per found element
    assert np.std(picture[..., :3]) > 0.05  # not a blank canvas


def test_plot_refuses_an_incomplete_maps_store(
    small_maps: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    incomplete = tmp_path / "incomplete.zarr"
    shutil.copytree(small_maps, incomplete)
    mark_incomplete(incomplete)
    png = tmp_path / "maps.png"
    code, _, err = _plot(incomplete, png, capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("eelsbatch: error: ") and "not complete" in err
    assert not png.exists()


def test_plot_of_a_single_spectrum_draws_the_spectrum(
    instrument_dir: Path, shipped_model: Path, tmp_path: Path, dask_client: Client, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    maps = tmp_path / "maps.zarr"
    run_map(instrument_dir / "test-EELS_spectrum.dm3", maps, shipped_model, dask_client, progress=False)
    png = tmp_path / "spectrum.png"
    code, _, err = _plot(maps, png, capsys, monkeypatch)
    assert code == 0, err
    assert matplotlib.image.imread(png).shape[1] >= 600


def test_edge_labels_do_not_overlap_and_colour_limits_ignore_a_few_bright_pixels() -> None:
    from eelsbatch.plot import colour_limits, edge_marks

    marks = edge_marks(["Fe", "O"], np.arange(400.0, 900.0))
    assert [label for _, label in marks if label] == ["Fe L2,3", "O K"]
    assert sorted(onset for onset, label in marks if not label) == [pytest.approx(721.1)]  # Fe L2, unlabelled
    values = np.random.default_rng(0).normal(100.0, 10.0, (32, 32))
    values[:3, :3] = 1e6  # spikes
    limits = colour_limits("edge_intensity", values)
    assert 50 < limits["vmin"] < limits["vmax"] < 200
    assert colour_limits("probability", values) == {"vmin": 0.0, "vmax": 1.0}
