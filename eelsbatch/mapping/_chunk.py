"""The per-block tasks of ``map`` over a store: the kernel (:mod:`eelsbatch.mapping._kernel`) between a read of the
input block and a write of its region of the maps store.

Each task is a pure function of (input store, model, block): re-running it rewrites identical values, so a task
retried after a worker died neither loses nor duplicates anything. The model is loaded once per worker, by
:class:`ModelPlugin`, when the run registers it.
"""

from __future__ import annotations

import time

import numpy as np
import zarr
from distributed import WorkerPlugin, get_worker

from eelsbatch.mapping._intensity import IntegrationWindow
from eelsbatch.mapping._kernel import intensity_block, recognise_block
from eelsbatch.mapping._layout import record_block, region_of


class ModelPlugin(WorkerPlugin):
    """Loads the recogniser into each worker once, as it joins (on its GPU where it has one).

    Parameters
    ----------
    model
        Model folder (a path the workers can read).
    sha256
        Its weights' hash: the plugin's name, so that two models never share a worker's copy.
    """

    def __init__(self, model: str, sha256: str) -> None:
        self.model, self.sha256 = model, sha256
        self.recogniser = None

    @property
    def name(self) -> str:
        """The plugin's name on the workers."""
        return plugin_name(self.sha256)

    def setup(self, worker) -> None:
        import torch

        from eelsbatch.model import load_recogniser

        torch.set_num_threads(max(1, worker.state.nthreads))
        recogniser = load_recogniser(self.model)
        self.recogniser = recogniser.to("cuda") if torch.cuda.is_available() else recogniser


def plugin_name(sha256: str) -> str:
    """Name of the :class:`ModelPlugin` of the model whose weights hash to ``sha256``."""
    return f"eelsbatch-model-{sha256[:16]}"


def map_chunk(
    input_store: str,
    output_store: str,
    sha256: str,
    block: tuple[tuple[int, int], ...],
    chunk_index: int,
    threshold: float,
    intensity_windows: dict[int, IntegrationWindow],
    sector_starts: list[int] | None = None,
    odds: np.ndarray | None = None,
) -> dict[str, float]:
    """Map one block of pixels and write every output variable's region.

    Parameters
    ----------
    input_store, output_store
        Paths of the spectrum-image store and the maps store (whose arrays already exist).
    sha256
        The model's weights hash (which :class:`ModelPlugin` holds it).
    block
        ``(start, stop)`` per navigation dim.
    chunk_index
        Position of the block in the chunk list (for the done-marker and the partial sum spectrum).
    threshold
        Presence threshold.
    intensity_windows
        Element index -> default windows of its classic edge-intensity map (:func:`~eelsbatch.mapping.integration_window`).
    sector_starts
        Channels where the detector's readout sectors start, where known (default: equal shares).
    odds
        Prior odds factors of the expected and excluded elements, or None.

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
    read = time.perf_counter()
    recogniser = get_worker().plugins[plugin_name(sha256)].recogniser
    maps = recognise_block(counts, energy, recogniser, threshold, sector_starts, odds)
    maps["edge_intensity"] = intensity_block(counts, energy, intensity_windows, len(recogniser.elements), maps["valid"])
    inferred = time.perf_counter()
    target = zarr.open_group(output_store, mode="r+")
    for name in ("probability", "present", "onset_energy", "edge_intensity"):
        target[name][(slice(None),) + region] = np.moveaxis(maps[name], -1, 0)
    target["valid"][region] = maps["valid"]
    flat = counts.reshape(-1, energy.size)
    finite_sum = np.where(np.isfinite(flat), flat, 0.0).sum(axis=0, dtype=np.float64)
    present = maps["present"].reshape(-1, len(recogniser.elements))
    record_block(target, chunk_index, finite_sum, present.sum(axis=0), int(np.count_nonzero(~maps["valid"])))
    return {"spectra": float(flat.shape[0]), "read": read - started, "inference": inferred - read,
            "write": time.perf_counter() - inferred}


def finish_chunk(input_store: str, output_store: str, block: tuple[tuple[int, int], ...],
                 moved: dict[int, IntegrationWindow | None], absent: list[int]) -> None:
    """One block's classic maps made final, in one read and one write of its region: the elements whose windows
    moved clear of other found elements' edges measured again (``moved``: element index -> windows, None: no clean
    window, NaN), those found nowhere blanked (``absent``: element indices, NaN)."""
    region = (slice(None), *region_of(block))
    target = zarr.open_group(output_store, mode="r+")
    intensity = target["edge_intensity"][region]
    if moved:
        source = zarr.open_group(input_store, mode="r")
        counts = np.asarray(source["counts"][region[1:] + (slice(None),)], dtype=np.float32)
        remeasured = intensity_block(counts, source["energy"][:], moved, intensity.shape[0], target["valid"][region[1:]])
        for index in moved:
            intensity[index] = remeasured[..., index]
    intensity[absent] = np.nan
    target["edge_intensity"][region] = intensity
