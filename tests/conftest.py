"""Shared fixtures: the real instrument files and a real Dask cluster on loopback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

INSTRUMENT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instrument"


@pytest.fixture(scope="session")
def instrument_dir() -> Path:
    """The folder of real instrument files (``../shared/data/instrument``)."""
    if not INSTRUMENT_DIR.is_dir():
        pytest.skip(f"real instrument files not found at {INSTRUMENT_DIR}")
    return INSTRUMENT_DIR


@pytest.fixture(scope="session")
def velox_emd(instrument_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Velox .emd file, unzipped into a temporary folder (never into the repo)."""
    target = tmp_path_factory.mktemp("velox")
    with zipfile.ZipFile(instrument_dir / "velox_EELS_EDS.zip") as archive:
        archive.extractall(target)
    return next(target.glob("*.emd"))


@pytest.fixture(scope="session")
def dask_client() -> Client:
    """A real two-worker LocalCluster on loopback, shared by the whole session."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, Client(cluster) as client:
        yield client
