"""Shared fixtures: the real instrument files, the shipped model and a real Dask cluster on loopback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from distributed import Client

from eelsbatch.cluster import ClusterOptions, open_client
from eelsbatch.model import SHIPPED_MODEL

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
def shipped_model() -> Path:
    """The shipped model, package data in ``eelsbatch/shipped/`` (loaded and run, never retrained, in tests)."""
    assert (SHIPPED_MODEL / "weights.safetensors").is_file(), f"shipped model missing at {SHIPPED_MODEL}"
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def dask_client() -> Client:
    """A real two-worker LocalCluster on loopback (the one ``map`` builds), shared by the whole session."""
    with open_client(ClusterOptions(n_workers=2, threads_per_worker=1)) as client:
        yield client
