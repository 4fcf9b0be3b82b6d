"""The per-chunk work of ``map``: read one block of pixels, recognise, integrate, write its region.

A pure function of (input store, model, block): re-running it rewrites identical values, so a task
retried after a worker died neither loses nor duplicates anything.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import zarr

from eelsbatch.mapping._intensity import IntegrationWindow, edge_intensity
from eelsbatch.mapping._layout import record_block, region_of

_MODELS: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


def cached_recogniser(model: str, sha256: str, threads: int):
    """The worker process's copy of the recogniser (loaded once; on the GPU where there is one)."""
    import torch

    from eelsbatch.model import load_recogniser

    with _LOCK:
        key = (model, sha256)
        if key not in _MODELS:
            torch.set_num_threads(max(1, threads))
            recogniser = load_recogniser(model)
            if torch.cuda.is_available():
                recogniser.to("cuda")
            _MODELS[key] = recogniser
        return _MODELS[key]


def _worker_threads() -> int:
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):
        return 1


def map_chunk(
    input_store: str,
    output_store: str,
    model: str,
    sha256: str,
    block: tuple[tuple[int, int], ...],
    chunk_index: int,
    threshold: float,
    intensity_windows: dict[str, IntegrationWindow],
    sector_starts: list[int] | None = None,
) -> dict[str, float]:
    """Map one block of pixels and write every output variable's region.

    Parameters
    ----------
    input_store, output_store
        Paths of the spectrum-image store and the maps store (whose arrays already exist).
    model, sha256
        Model folder and its weights' hash (the cache key).
    block
        ``(start, stop)`` per navigation dim.
    chunk_index
        Position of the block in the chunk list (for the done-marker and the partial sum spectrum).
    threshold
        Presence threshold.
    intensity_windows
        Element -> windows of its classic edge-intensity map (:func:`~eelsbatch.mapping.integration_window`).
    sector_starts
        Channels where the detector's readout sectors start, where known (default: equal shares).

    Returns
    -------
    dict
        Timings in seconds (``read``, ``inference``, ``write``) and the number of spectra.
    """
    started = time.perf_counter()
    region = region_of(block)
    source = zarr.open_group(input_store, mode="r")
    counts = np.asarray(source["counts"][region + (slice(None),)], dtype=np.float32)
    energy = source["energy"][:]
    flat = counts.reshape(-1, energy.size)
    read = time.perf_counter()
    recogniser = cached_recogniser(model, sha256, _worker_threads())
    result = recogniser.predict(flat, energy, sector_starts=sector_starts)
    probability, valid = result["probability"], result["valid"]
    present = recogniser.decide(probability, threshold)
    onset = np.where(present, result["onset_energy"], np.nan)
    intensity = np.full(probability.shape, np.nan, np.float32)
    for element, window in intensity_windows.items():
        intensity[:, recogniser.elements.index(element)] = edge_intensity(flat, energy, window)
    intensity[~valid] = np.nan
    inferred = time.perf_counter()
    shape = counts.shape[:-1]
    target = zarr.open_group(output_store, mode="r+")
    for name, values in (("probability", probability), ("present", present), ("onset_energy", onset), ("edge_intensity", intensity)):
        target[name][(slice(None),) + region] = np.moveaxis(values, -1, 0).reshape((values.shape[-1], *shape))
    target["valid"][region] = valid.reshape(shape)
    finite_sum = np.where(np.isfinite(flat), flat, 0.0).sum(axis=0, dtype=np.float64)
    record_block(target, chunk_index, finite_sum, present.sum(axis=0), int(np.count_nonzero(~valid)))
    return {"spectra": float(flat.shape[0]), "read": read - started, "inference": inferred - read, "write": time.perf_counter() - inferred}


def refit_chunk(input_store: str, output_store: str, block: tuple[tuple[int, int], ...],
                windows: dict[int, IntegrationWindow | None]) -> None:
    """Measure one block's classic maps again with the given windows (element index -> windows, None: no clean
    window, NaN), for the elements whose default windows cross another found element's edge."""
    region = region_of(block)
    source = zarr.open_group(input_store, mode="r")
    counts = np.asarray(source["counts"][region + (slice(None),)], dtype=np.float32)
    energy = source["energy"][:]
    flat = counts.reshape(-1, energy.size)
    target = zarr.open_group(output_store, mode="r+")
    valid = target["valid"][region].reshape(-1)
    for index, window in windows.items():
        values = np.full(flat.shape[0], np.nan, np.float32) if window is None else edge_intensity(flat, energy, window)
        values[~valid] = np.nan
        target["edge_intensity"][(index, *region)] = values.reshape(counts.shape[:-1])
