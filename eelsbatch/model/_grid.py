"""The model's fixed energy grid: resampling any acquisition onto it, masking, and normalising."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse

from eelsbatch.errors import InputError
from eelsbatch.readout import boundary_channels


MIN_VALID_CELLS = 8


@dataclass(frozen=True)
class ModelGrid:
    """A logarithmic energy grid: constant relative resolution, fine where edges are dense.

    Parameters
    ----------
    start_eV, stop_eV
        First and last grid energies.
    points
        Number of grid points.
    floor
        Lower clip of the intensity (relative to the spectrum's median) before the logarithm.
    """

    start_eV: float = 50.0
    stop_eV: float = 3050.0
    points: int = 1024
    floor: float = 1e-3

    @property
    def energy(self) -> np.ndarray:
        """Grid point energies in eV (geometric)."""
        return np.geomspace(self.start_eV, self.stop_eV, self.points)

    @property
    def edges(self) -> np.ndarray:
        """Cell boundaries in eV (geometric midpoints, extended at both ends)."""
        energy = np.log(self.energy)
        step = energy[1] - energy[0]
        return np.exp(np.concatenate([[energy[0] - step / 2], (energy[:-1] + energy[1:]) / 2, [energy[-1] + step / 2]]))

    def to_dict(self) -> dict:
        """JSON-ready description (saved with the weights)."""
        return {"spacing": "log", **asdict(self)}

    def resample(self, counts: np.ndarray, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rebin spectra onto the grid, conserving counts, and mask cells outside the acquisition.

        Parameters
        ----------
        counts
            (n, channels) counts on the acquisition axis ``energy``.
        energy
            (channels,) increasing channel energies in eV shared by all spectra, or (n, channels).

        Returns
        -------
        density : (n, points) float32
            Mean counts per eV in each grid cell (0 where masked).
        mask : (n, points) bool
            True where the grid cell lies wholly inside the acquired window and holds no channel of a non-finite
            run at either end of the spectrum (:func:`_bridge_unread`).
        """
        counts = np.asarray(counts)
        energy = np.asarray(energy, dtype=np.float64)
        cells = self.edges
        counts, unread = _bridge_unread(counts)
        if energy.ndim == 1:  # one axis for all spectra (a spectrum image): one sparse rebinning matrix
            rebin, mask_row = _rebinning_matrix(energy, cells)
            density = np.asarray((rebin @ np.asarray(counts, dtype=np.float32).T).T, dtype=np.float32)
            mask = np.broadcast_to(mask_row, density.shape)
            if unread is not None:
                mask = mask & ~np.asarray((rebin @ unread.T.astype(np.float32)).T > 0)
                density[~mask] = 0.0
            return density, mask
        cumulative = np.zeros((counts.shape[0], counts.shape[1] + 1))
        np.cumsum(counts, axis=1, dtype=np.float64, out=cumulative[:, 1:])
        bounds = np.stack([_channel_bounds(row) for row in energy])
        at_cells = np.stack([np.interp(cells, b, c) for b, c in zip(bounds, cumulative)])
        mask = (cells[None, :-1] >= bounds[:, :1]) & (cells[None, 1:] <= bounds[:, -1:])
        if unread is not None:
            unread_before = np.zeros(cumulative.shape)
            np.cumsum(unread, axis=1, out=unread_before[:, 1:])
            mask &= np.stack([np.diff(np.interp(cells, b, c)) <= 0 for b, c in zip(bounds, unread_before)])
        density = np.diff(at_cells, axis=1) / np.diff(cells)[None, :]
        density[~mask] = 0.0
        return density.astype(np.float32), mask

    def window_cells(self, energy: np.ndarray) -> np.ndarray:
        """(points,) bool: the grid cells lying wholly inside the acquisition window ``energy`` (channels,)."""
        return _inside(self.edges, _channel_bounds(np.asarray(energy, dtype=np.float64)))

    def judged(self, mask: np.ndarray) -> np.ndarray:
        """(n,) bool: the spectra whose usable cells (``mask``, (n, points)) are enough to judge them."""
        return mask.sum(axis=1) >= MIN_VALID_CELLS

    def check_coverage(self, mask: np.ndarray) -> None:
        """Refuse spectra whose window covers fewer than ``MIN_VALID_CELLS`` grid cells."""
        if np.any(mask.sum(axis=1) < MIN_VALID_CELLS):
            raise InputError(
                None, f"the spectrum's energy window covers fewer than {MIN_VALID_CELLS} cells of the model grid "
                f"({self.start_eV:g}-{self.stop_eV:g} eV)"
            )

    def inputs(self, counts: np.ndarray, energy: np.ndarray, sector_marks: bool = False,
               sector_starts: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Network inputs for raw spectra: :meth:`resample`, then :meth:`normalise`.

        Parameters
        ----------
        counts, energy
            As for :meth:`resample`.
        sector_marks
            Add the third input channel, the readout-sector marks of :meth:`readout_boundaries`.
        sector_starts
            As for :meth:`readout_boundaries`.

        Returns
        -------
        inputs : (n, 2 or 3, points) float32
        mask : (n, points) bool
        """
        density, mask = self.resample(counts, energy)
        boundaries = None
        if sector_marks:
            boundaries = self.readout_boundaries(np.asarray(counts).shape[-1], energy, sector_starts)
        return self.normalise(density, mask, boundaries), mask

    def readout_boundaries(self, channels: int, energy: np.ndarray, sector_starts: Sequence[int] | None = None) -> np.ndarray:
        """(1 or n, points) float32: 1 in the grid cells holding a boundary between detector readout sectors.

        A detector read out through several ports steps where one sector ends and the next begins;
        marking those cells lets the network tell such a step from an edge.

        Parameters
        ----------
        channels
            Channels of the acquisition axis.
        energy
            (channels,) or (n, channels) channel energies in eV.
        sector_starts
            Channels (of this axis, 1 to ``channels - 1``) where a readout sector starts, for a known detector
            layout; empty for a detector read out through one port. Default: every sector start of an
            axis read out in 2 or 4 equal shares (:func:`eelsbatch.readout.boundary_channels`).
        """
        energy = np.atleast_2d(np.asarray(energy, dtype=np.float64))
        first = boundary_channels(channels) if sector_starts is None else np.asarray(sector_starts, dtype=np.int64)
        between = (energy[:, first - 1] + energy[:, first]) / 2  # (rows, boundaries)
        cell = np.searchsorted(self.edges, between, side="right") - 1
        on_grid = (cell >= 0) & (cell < self.points)
        marks = np.zeros((len(energy), self.points), np.float32)
        marks[np.nonzero(on_grid)[0], cell[on_grid]] = 1.0
        return marks

    def normalise(self, density: np.ndarray, mask: np.ndarray, boundaries: np.ndarray | None = None) -> np.ndarray:
        """Network input (n, 2 or 3, points): standardised log intensity over the valid cells, the mask, and the
        readout-sector boundaries where given (masked like the intensity).

        Absolute intensity drops out: each spectrum is divided by its median over valid cells, logged
        (clipped at ``floor``), and standardised to zero mean and unit variance over valid cells.
        """
        inputs = np.zeros((len(density), 2 if boundaries is None else 3, self.points), np.float32)
        if len(mask) and (mask == mask[:1]).all():  # one window for all spectra: work on its cells only
            cells = mask[0]
            values = np.asarray(density[:, cells], dtype=np.float64)
            inputs[:, 0, cells] = self._standardised(values, values > 0)
            inputs[:, 1, cells] = 1.0
        else:
            masked = np.where(mask, density, np.nan)
            inputs[:, 0] = np.where(mask, self._standardised(masked, mask & (masked > 0)), 0.0)
            inputs[:, 1] = mask
        if boundaries is not None:
            inputs[:, 2] = boundaries * mask
        return inputs

    def _standardised(self, values: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """Log of ``values`` over their median positive value, standardised per row (NaN values ignored).

        A spectrum with cells at or below zero (a dark level subtracted too far, a background subtracted by its
        author) is lifted first (:func:`_lifted`), so that its lowest cells are not clipped into deep spikes.
        """
        if not positive.all():
            values = _lifted(values, positive)
            positive = values > 0
        if positive.all():
            scale = np.median(values, axis=1, keepdims=True)
        else:
            with warnings.catch_warnings():  # a row with no positive value (a dark-subtracted blank readout) gets scale 1
                warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
                scale = np.nanmedian(np.where(positive, values, np.nan), axis=1, keepdims=True)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        logged = np.log(np.clip(values / scale, self.floor, None))
        with warnings.catch_warnings():  # a row with no usable cell (an all-NaN pixel) stays NaN: it is not judged
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(logged, axis=1, keepdims=True)
            return (logged - mean) / (np.nanstd(logged, axis=1, keepdims=True) + 1e-3)


def _lifted(values: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """``values`` (n, cells) with each row that holds a cell at or below zero raised by a constant: its lowest cell
    comes to one noise level (the robust spread of neighbouring cells' differences) above zero.

    Such a row's zero is not where no electrons arrived: a dark level subtracted too far, or a background subtracted
    by the author, put it there. A constant is what the dark level itself adds, so raising the row changes no edge;
    clipping its cells at ``floor`` instead turned noise into spikes as deep as the strongest edges (Fe and O at
    probability 1 lost to a spectrum's dark-subtracted tail). Rows of positive cells are left as they are.
    """
    rows = np.flatnonzero((~positive & ~np.isnan(values)).any(axis=1))
    if rows.size == 0:
        return values
    values = np.array(values, dtype=np.float64)
    with warnings.catch_warnings():  # a row with a single finite cell has no differences: it is raised by its depth
        warnings.simplefilter("ignore", RuntimeWarning)
        noise = 1.4826 / np.sqrt(2) * np.nanmedian(np.abs(np.diff(values[rows], axis=1)), axis=1)
        lowest = np.nanmin(values[rows], axis=1)
    noise = np.where(np.isfinite(noise) & (noise > 0), noise, np.maximum(np.abs(lowest), 1.0))
    values[rows] += (np.maximum(-lowest, 0.0) + noise)[:, None]
    return values


def _bridge_unread(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts with their non-finite (NaN, infinite) channels dealt with, and (n, channels) bool of those not acquired.

    A non-finite run at either end of a spectrum is treated as outside the acquired window (masked, as the network
    was trained to read a window's ends); one inside is bridged linearly from its finite neighbours, as a dead
    detector channel is, because a hole inside the window is nothing the network has seen. A spectrum with no finite
    channel is wholly not acquired. Returns ``None`` for the second array where every channel is finite.
    """
    finite = np.isfinite(counts)
    if finite.all():
        return counts, None
    counts = np.where(finite, counts, 0.0).astype(np.result_type(counts.dtype, np.float32))
    unread = ~finite
    channels = np.arange(counts.shape[1])
    for row in np.flatnonzero(unread.any(axis=1)):
        good = np.flatnonzero(finite[row])
        if good.size == 0:
            continue
        inside = unread[row] & (channels > good[0]) & (channels < good[-1])
        counts[row, inside] = np.interp(channels[inside], good, counts[row, good])
        unread[row, inside] = False
    return counts, unread


def _inside(cells: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(cells - 1,) bool: the cells between boundaries ``cells`` lying wholly inside the channel ``bounds``."""
    return (cells[:-1] >= bounds[0]) & (cells[1:] <= bounds[-1])


def _channel_bounds(energy: np.ndarray) -> np.ndarray:
    """Channel boundaries (channels + 1,) of an increasing energy axis: midpoints, extended at both ends."""
    width = np.diff(energy)
    return np.concatenate([energy[:1] - width[:1] / 2, (energy[1:] + energy[:-1]) / 2, energy[-1:] + width[-1:] / 2])


def _rebinning_matrix(energy: np.ndarray, cells: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """Sparse (cells, channels) matrix taking counts to mean counts per eV in each grid cell, and the mask.

    Entry (k, j) is the share of channel ``j`` lying in cell ``k``, divided by the cell's width; the rows
    of cells not wholly inside the acquired window are empty (masked).
    """
    bounds = _channel_bounds(energy)
    first = np.clip(np.searchsorted(bounds, cells[:-1], side="right") - 1, 0, energy.size - 1)
    last = np.clip(np.searchsorted(bounds, cells[1:], side="left") - 1, 0, energy.size - 1)
    mask = _inside(cells, bounds)
    per_cell = np.where(mask, last - first + 1, 0)
    rows = np.repeat(np.arange(cells.size - 1), per_cell)
    columns = first[rows] + np.arange(rows.size) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
    overlap = np.minimum(bounds[columns + 1], cells[rows + 1]) - np.maximum(bounds[columns], cells[rows])
    share = np.clip(overlap, 0.0, None) / (bounds[columns + 1] - bounds[columns]) / (cells[rows + 1] - cells[rows])
    matrix = scipy.sparse.csr_matrix((share.astype(np.float32), (rows, columns)), shape=(cells.size - 1, energy.size))
    return matrix, mask
