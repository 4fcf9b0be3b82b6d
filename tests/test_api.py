"""The Python API: ``eelsbatch.identify`` on in-memory and dask-backed DataArrays, with no scheduler, on a
LocalCluster, through the accessor and from HyperSpy, giving the maps ``eelsbatch map`` writes; fast imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from distributed import Client

import eelsbatch
from eelsbatch.errors import EelsbatchError, InputError
from eelsbatch.io import open_store, write_store
from eelsbatch.mapping import run_map
from eelsbatch.synth import spectrum_image

VARIABLES = ("probability", "present", "onset_energy", "edge_intensity", "valid")


@pytest.fixture(scope="module")
def store_and_maps(tmp_path_factory: pytest.TempPathFactory, dask_client: Client, shipped_model: Path) -> tuple[Path, Path]:
    """A 16 x 16 core-shell image with a NaN pixel, in 4 chunks, and its maps from ``map``."""
    counts, _ = spectrum_image("core-shell", (16, 16), seed=8)
    values = np.asarray(counts.values, np.float32)
    values[3, 5] = np.nan
    folder = tmp_path_factory.mktemp("api")
    store = write_store(counts.copy(data=values), folder / "image.zarr", chunks=[8, 8], client=dask_client)
    run_map(store, folder / "maps.zarr", shipped_model, dask_client, progress=False)
    return store, folder / "maps.zarr"


def assert_maps_equal(got: xr.Dataset, expected: xr.Dataset) -> None:
    """Decisions identical; probabilities, onsets and intensities equal to float32 rounding (the network's sums run in
    another order on another number of threads), NaN where NaN."""
    for name in VARIABLES:
        assert got[name].dims == expected[name].dims, name
        values, reference = np.asarray(got[name].values), np.asarray(expected[name].values)
        if values.dtype == bool:
            np.testing.assert_array_equal(values, reference, err_msg=name)
        else:
            np.testing.assert_allclose(values, reference, rtol=2e-3, atol=1e-5, err_msg=name)
    assert list(got["element"].values) == list(expected["element"].values)


def test_identify_in_memory_gives_the_maps_of_map(store_and_maps: tuple[Path, Path]) -> None:
    store, maps = store_and_maps
    spectra = eelsbatch.open(store).compute()
    result = eelsbatch.identify(spectra)
    assert isinstance(result["probability"].data, np.ndarray)
    assert_maps_equal(result, open_store(maps, kind="maps"))
    assert not bool(result["valid"].sel(y=3.0, x=5.0))


def test_identify_on_dask_data_is_lazy_and_runs_without_a_client(store_and_maps: tuple[Path, Path]) -> None:
    store, maps = store_and_maps
    result = eelsbatch.identify(eelsbatch.open(store))
    assert all(isinstance(result[name].data, dask.array.Array) for name in VARIABLES)
    with dask.config.set(scheduler="threads"):
        computed = result.compute()
    assert_maps_equal(computed, open_store(maps, kind="maps"))


def test_identify_on_a_local_cluster_and_through_the_accessor(store_and_maps: tuple[Path, Path], dask_client: Client) -> None:
    store, maps = store_and_maps
    computed = eelsbatch.open(store).eels.identify().compute()  # the session's LocalCluster is the default scheduler
    assert_maps_equal(computed, open_store(maps, kind="maps"))


def test_identify_takes_an_array_with_its_energies(store_and_maps: tuple[Path, Path]) -> None:
    store, maps = store_and_maps
    spectra = eelsbatch.open(store)
    result = eelsbatch.identify(spectra.values[:2, :2], energy=spectra["energy"].values)
    assert result["probability"].dims == ("element", "dim_0", "dim_1")
    expected = open_store(maps, kind="maps")["probability"].values[:, :2, :2]
    np.testing.assert_allclose(result["probability"].values, expected, rtol=2e-3, atol=1e-5)
    with pytest.raises(InputError, match="energy"):
        eelsbatch.identify(spectra.values[:2, :2])
    with pytest.raises(EelsbatchError, match="misses the model grid"):
        eelsbatch.identify(spectra.values[:2, :2], energy=spectra["energy"].values + 5000)


def test_identify_on_a_hyperspy_signal_and_back(store_and_maps: tuple[Path, Path]) -> None:
    hs = pytest.importorskip("hyperspy.api", reason="HyperSpy is not installed (pip install hyperspy)")
    store, maps = store_and_maps
    spectra = eelsbatch.open(store).compute()
    signal = hs.signals.Signal1D(spectra.values)
    signal.axes_manager.signal_axes[0].offset = float(spectra["energy"][0])
    signal.axes_manager.signal_axes[0].scale = float(spectra["energy"][1] - spectra["energy"][0])
    signal.axes_manager.signal_axes[0].units = "eV"
    result = eelsbatch.identify(signal)
    expected = open_store(maps, kind="maps")
    np.testing.assert_array_equal(result["present"].values, expected["present"].values)
    signals = eelsbatch.to_hyperspy(expected)
    present = signals["present"]
    assert present.data.shape == expected["present"].shape
    assert present.metadata.Sample.elements == list(map(str, expected["element"].values))


def test_import_and_help_load_neither_torch_nor_distributed() -> None:
    """What keeps ``import eelsbatch`` and ``eelsbatch --help`` fast (timed apart, not in a test)."""
    check = "import sys, eelsbatch; print(sorted(m for m in ('torch', 'distributed') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-X", "importtime", "-m", "eelsbatch.cli", "--help"], capture_output=True,
                            text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in helped.stderr.splitlines()}
    assert "torch" not in imported and "distributed" not in imported and "Usage" in helped.stdout
