"""The per-block kernel: a block of spectra with its energy axis in, that block's maps out.

Pure functions of their arguments, in the spirit of LiberTEM's UDFs: ``map`` over a store
(:func:`~eelsbatch.mapping.map_chunk`), the Python API (:func:`eelsbatch.identify`), the demo and the benchmarks all
call them, on whatever executor holds the block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from eelsbatch.mapping._intensity import IntegrationWindow, edge_intensity, integration_window
from eelsbatch.model._priors import with_priors

if TYPE_CHECKING:
    from eelsbatch.model import Recogniser

FOUND_SHARE = 0.01  # an element is "found" where present in at least 1 % of the pixels (or the only spectrum)


def recognise_block(counts: np.ndarray, energy: np.ndarray, recogniser: Recogniser, threshold: float | None = None,
                    sector_starts: Sequence[int] | None = None, odds: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Element probabilities, presence and onsets of every spectrum of a block.

    Parameters
    ----------
    counts
        (..., channels) counts; non-finite channels are not acquired (:meth:`ModelGrid.resample`).
    energy
        (channels,) channel energies in eV.
    recogniser
        The model.
    threshold
        Presence threshold (default: the model's).
    sector_starts
        Channels where the detector's readout sectors start, where known (default: equal shares).
    odds
        (elements,) prior odds factors of an analyst's expected and excluded elements
        (:func:`~eelsbatch.model.prior_odds`), or None.

    Returns
    -------
    dict
        ``probability`` (with the priors), ``present``, ``onset_energy``: (..., elements); ``valid``: (...) bool, False for a spectrum
        that could not be judged (its maps NaN or False).
    """
    shape = counts.shape[:-1]
    flat = np.asarray(counts, dtype=np.float32).reshape(-1, counts.shape[-1])
    result = recogniser.predict(flat, energy, sector_starts=sector_starts)
    result["probability"] = with_priors(result["probability"], odds)
    present = recogniser.decide(result["probability"], threshold)
    onset = np.where(present, result["onset_energy"], np.nan).astype(np.float32)
    elements = len(recogniser.elements)
    return {"probability": result["probability"].reshape(*shape, elements), "present": present.reshape(*shape, elements),
            "onset_energy": onset.reshape(*shape, elements), "valid": result["valid"].reshape(shape)}


def intensity_block(counts: np.ndarray, energy: np.ndarray, windows: dict[int, IntegrationWindow | None], elements: int,
                    valid: np.ndarray | None = None) -> np.ndarray:
    """(..., elements) float32 classic edge-intensity maps of a block: NaN but for the element indices in ``windows``
    (None there: no clean window, NaN too) and NaN for spectra not ``valid``."""
    shape = counts.shape[:-1]
    flat = counts.reshape(-1, counts.shape[-1])
    intensity = np.full((flat.shape[0], elements), np.nan, np.float32)
    for index, window in windows.items():
        if window is not None:
            intensity[:, index] = edge_intensity(flat, energy, window)
    if valid is not None:
        intensity[~np.asarray(valid).reshape(-1)] = np.nan
    return intensity.reshape(*shape, elements)


def found_elements(present_pixels: np.ndarray, pixels: int, elements: Sequence[str]) -> list[str]:
    """Elements reported in at least ``FOUND_SHARE`` of the pixels (or in the only one), from per-element counts."""
    return [element for element, count in zip(elements, present_pixels) if count > 0 and count >= FOUND_SHARE * pixels]


def found_windows(found: Sequence[str], energy: np.ndarray, elements: Sequence[str]) -> dict[int, IntegrationWindow | None]:
    """Element index -> the windows of each found element's classic map, clear of the other found elements' edges
    (:func:`integration_window`; None where no clean window fits)."""
    return {elements.index(e): integration_window(e, energy, found) for e in found}


def default_windows(energy: np.ndarray, elements: Sequence[str]) -> dict[int, IntegrationWindow]:
    """Element index -> each element's default windows in ``energy`` (none found beside it), where they fit."""
    return {i: w for i, e in enumerate(elements) if (w := integration_window(e, energy)) is not None}
