"""Stream a synthetic training store chunk by chunk and turn it into network inputs and targets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from torch.utils.data import DataLoader, Dataset, Sampler

from eelsbatch.edges import MAJOR_FAMILIES, load_edge_table
from eelsbatch.io import open_store
from eelsbatch.model._grid import MIN_VALID_CELLS, ModelGrid
from eelsbatch.model._metrics import scored_entries


@dataclass
class Batch:
    """Network inputs and targets for a block of spectra."""

    inputs: np.ndarray  # (n, 2 or 3, points) float32
    detectable: np.ndarray  # (n, elements) float32 targets
    present: np.ndarray  # (n, elements) bool, every element with an edge in the window
    tags: np.ndarray  # (n, steps) int64: 0 none, 1 + element index where a detectable element's edge starts
    onset_energy: np.ndarray  # (n, elements) float32 nominal onset energy in eV (NaN where none)
    snr: np.ndarray  # (n, elements) float32 edge SNR as an analyst measures it
    dose: np.ndarray  # (n,) counts per channel at the window start
    readout_sectors: np.ndarray  # (n,) ports the spectrum was read out through (1, 2 or 4)

    def take(self, index: np.ndarray | slice) -> Batch:
        """The samples ``index`` selects (a mask, an order or a slice), every field alike."""
        return Batch(*(getattr(self, name)[index] for name in Batch.__dataclass_fields__))

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
    sector_marks
        Give the inputs the readout-sector marks channel (:meth:`ModelGrid.readout_boundaries`; networks with 3
        input channels).
    """

    def __init__(self, path: str | Path, elements: list[str], grid: ModelGrid, downsampling: int,
                 sector_marks: bool = True) -> None:
        open_store(path, kind="training_set")  # one-line errors for a missing, incomplete or wrong store
        self.path = Path(path)
        self.group = zarr.open_group(str(path), mode="r")
        stored = [str(e) for e in self.group["element"][:]]
        self.columns = np.array([stored.index(e) for e in elements])
        self.elements, self.grid, self.downsampling = elements, grid, downsampling
        self.sector_marks = sector_marks
        share = self.group.attrs.get("composition_share") or {}  # stores written before it was recorded: none
        self.composition_share = {element: float(share[element]) for element in elements if element in share}
        self.size = self.group["spectrum"].shape[0]
        self.chunk = self.group["spectrum"].chunks[0]
        table = load_edge_table()
        element_index = {e: i for i, e in enumerate(elements)}
        # edge-table row -> 1 + element index for major-family edges of vocabulary elements, else 0
        self.edge_to_tag = np.array(
            [1 + element_index[edge.element] if edge.family in MAJOR_FAMILIES and edge.element in element_index else 0
             for edge in table] + [0], dtype=np.int64,
        )

    def __getstate__(self) -> dict:
        """Picklable for loader processes: the Zarr group is reopened there."""
        return {name: value for name, value in self.__dict__.items() if name != "group"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.group = zarr.open_group(str(self.path), mode="r")

    def dispersion_range(self) -> list[float]:
        """Smallest and largest dispersion of the store's spectra in eV/channel, to 4 significant digits."""
        dispersion = self.group["dispersion"][:]
        return [float(f"{dispersion.min():.4g}"), float(f"{dispersion.max():.4g}")]

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
        inputs, mask = self.grid.inputs(counts, energy, self.sector_marks)
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
            readout_sectors=group["readout_sectors"][start:stop] if "readout_sectors" in group else np.ones(len(counts), np.int64),
        )
        return batch.take(covered)

    def read_chunk(self, start: int, shuffle_seed: Sequence[int] | None = None) -> Batch:
        """The chunk that begins at sample ``start``, its samples shuffled by ``shuffle_seed`` where given."""
        batch = self.read(start, min(start + self.chunk, self.size))
        if shuffle_seed is None:
            return batch
        return batch.take(np.random.default_rng(list(shuffle_seed)).permutation(len(batch.inputs)))

    def batches(self, starts: list[int]) -> Iterator[Batch]:
        """Chunks in the given order, unshuffled."""
        for start in starts:
            yield self.read_chunk(start)


ChunkKey = tuple[int, int]  # (store, first sample of the chunk)


class TrainingStores:
    """One or more training stores read as one training set, chunk by chunk (``synth`` stores of different draws,
    e.g. the default ones beside ``--real-acquisitions``).

    Parameters
    ----------
    paths
        Stores written by ``eelsbatch synth``.
    elements, grid, downsampling, sector_marks
        As for :class:`TrainingStore`.
    """

    def __init__(self, paths: Sequence[str | Path], elements: list[str], grid: ModelGrid, downsampling: int,
                 sector_marks: bool = True) -> None:
        self.stores = [TrainingStore(path, elements, grid, downsampling, sector_marks) for path in paths]
        self.size = sum(store.size for store in self.stores)
        self.chunk = max(store.chunk for store in self.stores)

    @property
    def composition_share(self) -> dict[str, float]:
        """Each element's share of the compositions over all the stores (weighed by their sizes); empty where a
        store does not record it, since the training prior is then unknown."""
        if not all(store.composition_share for store in self.stores):
            return {}
        return {element: sum(store.size * store.composition_share.get(element, 0.0) for store in self.stores) / self.size
                for element in self.stores[0].elements}

    def dispersion_range(self) -> list[float]:
        """Smallest and largest dispersion of all the stores' spectra in eV/channel."""
        ranges = np.array([store.dispersion_range() for store in self.stores])
        return [float(ranges[:, 0].min()), float(ranges[:, 1].max())]

    def split(self, validation_fraction: float) -> tuple[list[ChunkKey], list[ChunkKey]]:
        """Training and validation chunks: the last ``validation_fraction`` of each store's chunks (at least one) for
        validation, so that every kind of draw is validated."""
        training, validation = [], []
        for index, store in enumerate(self.stores):
            keys = [(index, start) for start in store.chunk_starts()]
            held = max(1, int(round(len(keys) * validation_fraction)))
            training += keys[:-held]
            validation += keys[-held:]
        return training, validation

    def read_chunk(self, key: ChunkKey, shuffle_seed: Sequence[int] | None = None) -> Batch:
        """The chunk ``key``, its samples shuffled by ``shuffle_seed`` where given."""
        store, start = key
        return self.stores[store].read_chunk(start, shuffle_seed)

    def batches(self, keys: list[ChunkKey]) -> Iterator[Batch]:
        """Chunks in the given order, unshuffled."""
        for key in keys:
            yield self.read_chunk(key)


class _Chunks(Dataset):
    """Map-style view of the stores: key ``(chunk key, shuffle_seed)`` -> that chunk, shuffled."""

    def __init__(self, stores: TrainingStores) -> None:
        self.stores = stores

    def __getitem__(self, key: tuple[ChunkKey, tuple[int, ...]]) -> Batch:
        return self.stores.read_chunk(*key)


class _Order(Sampler):
    """The keys of the current epoch, set before each pass (so that loader processes live across epochs)."""

    def __init__(self) -> None:
        self.keys: list[tuple[ChunkKey, tuple[int, ...]]] = []

    def __iter__(self) -> Iterator[tuple[ChunkKey, tuple[int, ...]]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _as_is(batch: Batch) -> Batch:
    return batch


class ShuffledChunks:
    """Training chunks in a random order per epoch, samples shuffled within each, read ahead by loader processes.

    The order depends on ``seed`` and the epoch only, so a resumed run, or one with another number of loader
    processes, sees the same data in the same order.

    Parameters
    ----------
    stores
        The training stores.
    keys
        The training chunks.
    per_epoch
        Chunks drawn (without replacement) per epoch.
    seed
        Seed of the draws and shuffles.
    workers
        Loader processes reading chunks ahead of the training step (0: read in this process, in turn).
    """

    def __init__(self, stores: TrainingStores, keys: list[ChunkKey], per_epoch: int, seed: int, workers: int = 0) -> None:
        self.keys, self.per_epoch, self.seed = list(keys), per_epoch, seed
        self._order = _Order()
        self._loader = DataLoader(
            _Chunks(stores), batch_size=None, sampler=self._order, num_workers=workers, collate_fn=_as_is,
            persistent_workers=workers > 0, prefetch_factor=2 if workers else None,
            multiprocessing_context="forkserver" if workers else None,  # no fork of Zarr's event-loop thread
        )

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The chunks of ``epoch`` (counted from 0)."""
        rng = np.random.default_rng([self.seed, epoch])
        chosen = [self.keys[i] for i in rng.choice(len(self.keys), self.per_epoch, replace=False)]
        self._order.keys = [(key, (self.seed, epoch, *key)) for key in chosen]
        return iter(self._loader)
