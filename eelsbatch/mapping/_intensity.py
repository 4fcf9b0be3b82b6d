"""Classic elemental maps: background-subtracted integrated edge signal, pixel by pixel."""

from __future__ import annotations

import numpy as np

from eelsbatch.edges import MAJOR_FAMILIES, edges_of

PRE_EDGE = (0.15, 0.02)  # pre-edge window from onset*(1-0.15) to onset*(1-0.02)
POST_EDGE_MIN_EV, POST_EDGE_FRACTION = 50.0, 0.1  # integrate over max(50 eV, 10 % of the onset)
MIN_PRE_CHANNELS = 5


def integration_onset(element: str, energy: np.ndarray) -> float | None:
    """Lowest major-edge onset of ``element`` whose windows fit in ``energy``.

    The post-edge window must fit whole; the pre-edge window may be cut by the start of the data
    (e.g. C K at 284 eV in a window from 250 eV) as long as at least half of it and
    ``MIN_PRE_CHANNELS`` channels remain.
    """
    for edge in sorted(edges_of(element), key=lambda e: e.onset_eV):
        onset = edge.onset_eV
        if edge.family not in MAJOR_FAMILIES:
            continue
        low, high = onset * (1 - PRE_EDGE[0]), onset * (1 - PRE_EDGE[1])
        pre_channels = np.count_nonzero((energy >= low) & (energy <= high))
        pre_fits = high - max(low, energy[0]) >= (high - low) / 2 and pre_channels >= MIN_PRE_CHANNELS
        if pre_fits and onset + max(POST_EDGE_MIN_EV, POST_EDGE_FRACTION * onset) <= energy[-1]:
            return onset
    return None


def edge_intensity(counts: np.ndarray, energy: np.ndarray, onset: float) -> np.ndarray:
    """Power-law background fit before ``onset`` and integrated counts above it, for every spectrum.

    Parameters
    ----------
    counts
        (n, channels) counts.
    energy
        (channels,) energies in eV.
    onset
        Edge onset in eV (from the edge table).

    Returns
    -------
    numpy.ndarray
        (n,) integrated counts above the extrapolated background ``A * E ** -r`` over
        ``[onset, onset + max(50 eV, 0.1 * onset)]``; NaN where fewer than 3 pre-edge channels hold
        positive counts.
    """
    pre = (energy >= onset * (1 - PRE_EDGE[0])) & (energy <= onset * (1 - PRE_EDGE[1]))
    post = (energy >= onset) & (energy <= onset + max(POST_EDGE_MIN_EV, POST_EDGE_FRACTION * onset))
    window = np.asarray(counts[:, pre], dtype=np.float64)
    usable = window > 0
    x = np.log(energy[pre])[None, :] * usable
    y = np.log(np.where(usable, window, 1.0))
    n = usable.sum(axis=1)
    sx, sy = x.sum(axis=1), y.sum(axis=1)
    sxx, sxy = (x * x).sum(axis=1), (x * y).sum(axis=1)
    denominator = n * sxx - sx**2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sxy - sx * sy) / denominator
        intercept = (sy - slope * sx) / n
        background = np.exp(intercept[:, None] + slope[:, None] * np.log(energy[post])[None, :])
        signal = (np.asarray(counts[:, post], dtype=np.float64) - background).sum(axis=1)
    return np.where((n >= 3) & np.isfinite(signal), signal, np.nan).astype(np.float32)
