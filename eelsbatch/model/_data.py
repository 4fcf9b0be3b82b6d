"""Stream a synthetic training store chunk by chunk and turn it into network inputs and targets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from eelsbatch.edges import MAJOR_FAMILIES, load_edge_table
from eelsbatch.io import open_store
from eelsbatch.model._grid import MIN_VALID_CELLS, ModelGrid
from eelsbatch.model._metrics import scored_entries


@dataclass
class Batch:
    """Network inputs and targets for a block of spectra."""

    inputs: np.ndarray  # (n, 2, points) float32
    detectable: np.ndarray  # (n, elements) float32 targets
    present: np.ndarray  # (n, elements) bool, every element with an edge in the window
    tags: np.ndarray  # (n, steps) int64: 0 none, 1 + element index where a detectable element's edge starts
    onset_energy: np.ndarray  # (n, elements) float32 nominal onset energy in eV (NaN where none)
    snr: np.ndarray
    dose: np.ndarray

    def scored(self) -> np.ndarray:
        """(n, elements) bool: targets that count (:func:`~eelsbatch.model._metrics.scored_entries`)."""
        return scored_entries(self.detectable > 0.5, self.present)


class TrainingStore:
    """A synthetic training store read lazily, one Zarr chunk at a time.

    Parameters
    ----------
    path
        Store written by ``eelsbatch synth``.
    elements
        The model's element vocabulary (must be the store's own or a subset).
    grid
        The model grid.
    downsampling
        Grid points per network step (for the onset tags).
    """

    def __init__(self, path: str | Path, elements: list[str], grid: ModelGrid, downsampling: int) -> None:
        open_store(path, kind="training_set")  # one-line errors for a missing, incomplete or wrong store
        self.group = zarr.open_group(str(path), mode="r")
        stored = [str(e) for e in self.group["element"][:]]
        self.columns = np.array([stored.index(e) for e in elements])
        self.elements, self.grid, self.downsampling = elements, grid, downsampling
        self.size = self.group["spectrum"].shape[0]
        self.chunk = self.group["spectrum"].chunks[0]
        table = load_edge_table()
        element_index = {e: i for i, e in enumerate(elements)}
        # edge-table row -> 1 + element index for major-family edges of vocabulary elements, else 0
        self.edge_to_tag = np.array(
            [1 + element_index[edge.element] if edge.family in MAJOR_FAMILIES and edge.element in element_index else 0
             for edge in table] + [0], dtype=np.int64,
        )

    def chunk_starts(self) -> list[int]:
        """First sample of every chunk."""
        return list(range(0, self.size, self.chunk))

    def read(self, start: int, stop: int) -> Batch:
        """Inputs and targets of samples ``start`` to ``stop``."""
        group = self.group
        counts = group["spectrum"][start:stop]
        channels = counts.shape[1]
        offset, dispersion = group["energy_offset"][start:stop], group["dispersion"][start:stop]
        energy = offset[:, None] + dispersion[:, None] * np.arange(channels)
        density, mask = self.grid.resample(counts, energy)
        inputs = self.grid.normalise(density, mask)
        covered = mask.sum(axis=1) >= MIN_VALID_CELLS  # windows almost wholly off the grid teach nothing
        detectable = group["detectable"][start:stop][:, self.columns]
        labels = group["onset_label"][start:stop].astype(np.int64)
        tag_of_channel = self.edge_to_tag[labels]  # -1 labels map to the trailing 0
        cells = self.grid.edges
        steps = self.grid.points // self.downsampling
        tags = np.zeros((len(counts), steps), np.int64)
        onset = np.full(detectable.shape, np.nan, np.float32)
        rows, channels_hit = np.nonzero(tag_of_channel)
        element = tag_of_channel[rows, channels_hit] - 1
        keep = detectable[rows, element]
        rows, channels_hit, element = rows[keep], channels_hit[keep], element[keep]
        hit_energy = energy[rows, channels_hit]
        step = np.clip((np.searchsorted(cells, hit_energy) - 1) // self.downsampling, 0, steps - 1)
        tags[rows, step] = element + 1
        order = np.argsort(-hit_energy)  # keep the lowest onset per element
        onset[rows[order], element[order]] = hit_energy[order]
        batch = Batch(
            inputs=inputs, detectable=detectable.astype(np.float32),
            present=group["elements"][start:stop][:, self.columns], tags=tags, onset_energy=onset,
            snr=group["snr"][start:stop][:, self.columns], dose=group["dose"][start:stop],
        )
        return Batch(*(getattr(batch, name)[covered] for name in Batch.__dataclass_fields__))

    def batches(self, starts: list[int], rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """Chunks in the given (or shuffled) order, samples shuffled within each chunk."""
        order = list(starts) if rng is None else [starts[i] for i in rng.permutation(len(starts))]
        for start in order:
            batch = self.read(start, min(start + self.chunk, self.size))
            if rng is not None:
                shuffle = rng.permutation(len(batch.inputs))
                batch = Batch(*(getattr(batch, name)[shuffle] for name in Batch.__dataclass_fields__))
            yield batch
