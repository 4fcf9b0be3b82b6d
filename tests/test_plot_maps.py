"""``eelsbatch plot``: a PNG of the element maps and the sum spectrum, from a real maps store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import zarr
from distributed import Client

from eelsbatch.cli import default_model
from eelsbatch.io import mark_incomplete, write_store
from eelsbatch.mapping import run_map
from eelsbatch.synth import spectrum_image


@pytest.fixture(scope="module")
def small_maps(tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """Maps of a 12 x 12 core-shell spectrum image made with the shipped model."""
    folder = tmp_path_factory.mktemp("plot")
    counts, truth = spectrum_image("core-shell", (12, 12), seed=4)
    image = write_store(counts, folder / "image.zarr", chunks=[12, 12], extra={"truth": truth}, client=dask_client)
    run_map(image, folder / "maps.zarr", default_model(), dask_client, progress=False)
    return folder / "maps.zarr"


def _plot(maps: Path, png: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", "plot", str(maps), "--out", str(png)],
                          capture_output=True, text=True, timeout=120)


def test_plot_writes_one_map_row_per_found_element_and_the_sum_spectrum(small_maps: Path, tmp_path: Path) -> None:
    png = tmp_path / "maps.png"
    result = _plot(small_maps, png)
    assert result.returncode == 0, result.stderr
    assert str(png) in result.stdout
    picture = matplotlib.image.imread(png)
    found = json.loads(zarr.open_group(str(small_maps), mode="r").attrs["elements_found"])
    assert found, "the shipped model found nothing in a strong synthetic image"
    height, width = picture.shape[:2]
    assert width >= 600 and height > 250 * len(found), (picture.shape, found)  # a row of maps per found element
    assert np.std(picture[..., :3]) > 0.05  # not a blank canvas


def test_plot_refuses_an_incomplete_maps_store(small_maps: Path, tmp_path: Path) -> None:
    incomplete = tmp_path / "incomplete.zarr"
    shutil.copytree(small_maps, incomplete)
    mark_incomplete(incomplete)
    png = tmp_path / "maps.png"
    result = _plot(incomplete, png)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("eelsbatch: error: ") and "not complete" in result.stderr
    assert not png.exists()
