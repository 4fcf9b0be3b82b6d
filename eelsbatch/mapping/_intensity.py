"""Classic elemental maps: background-subtracted integrated edge signal, pixel by pixel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eelsbatch.edges import MAJOR_FAMILIES, edges_of

PRE_EDGE = (0.15, 0.02)  # pre-edge window from onset*(1-0.15) to onset*(1-0.02)
POST_EDGE_MIN_EV, POST_EDGE_FRACTION = 50.0, 0.1  # integrate over max(50 eV, 10 % of the onset)
MIN_PRE_CHANNELS = 5


CLEARANCE = 0.03  # relative: a window starts this far above another element's onset (its near-edge structure)
MOVED_PRE_SHARE = 0.2  # a pre-edge fit moved clear of another edge keeps at least this share of the default width


@dataclass(frozen=True)
class IntegrationWindow:
    """Where one element's classic map is measured: a pre-edge fit range and a post-edge integration range, in eV."""

    onset: float
    pre: tuple[float, float]
    post: tuple[float, float]

    def to_dict(self) -> dict[str, float | list[float]]:
        """JSON-ready (recorded in the maps store's ``integration_windows``)."""
        return {"onset": self.onset, "pre": list(self.pre), "post": list(self.post)}


def _family_spans(element: str) -> list[tuple[float, float]]:
    """(first, last) onset of each major edge family of ``element`` (L3 to L2 of L2,3), lowest first."""
    spans: dict[str, list[float]] = {}
    for edge in edges_of(element):
        if edge.family in MAJOR_FAMILIES:
            spans.setdefault(edge.family, []).append(edge.onset_eV)
    return sorted((min(onsets), max(onsets)) for onsets in spans.values())


def _default_window(onset: float) -> IntegrationWindow:
    return IntegrationWindow(onset, (onset * (1 - PRE_EDGE[0]), onset * (1 - PRE_EDGE[1])),
                             (onset, onset + max(POST_EDGE_MIN_EV, POST_EDGE_FRACTION * onset)))


def _fits(window: IntegrationWindow, energy: np.ndarray, pre_share: float = 0.5) -> bool:
    """The post-edge range inside the data; at least ``pre_share`` of the default pre-edge width and
    ``MIN_PRE_CHANNELS`` channels of the pre-edge range inside it (the start of the data may cut it)."""
    low, high = window.pre
    default_width = window.onset * (PRE_EDGE[0] - PRE_EDGE[1])
    pre_channels = np.count_nonzero((energy >= low) & (energy <= high))
    return (high - max(low, energy[0]) >= pre_share * default_width and pre_channels >= MIN_PRE_CHANNELS
            and window.post[1] <= energy[-1])


def integration_window(element: str, energy: np.ndarray, others: Sequence[str] = ()) -> IntegrationWindow | None:
    """The windows of ``element``'s classic map in ``energy``, clear of the major edges of the ``others`` found.

    The lowest major edge whose windows fit is used. By default the pre-edge fit runs from 15 % to 2 % below the
    onset and the integration over ``max(50 eV, 10 %)`` above it. Where another found element's edge falls inside,
    an analyst moves the windows: the pre-edge fit starts ``CLEARANCE`` above that edge family's last onset (L2 of
    L2,3: the white lines and near-edge structure between are part of the edge), keeping at least
    ``MOVED_PRE_SHARE`` of its width), the integration stops at the next edge above the onset (keeping at least 25 eV). None where no clean window fits (the map of
    the element is then NaN, and ``map`` says so).
    """
    foreign = sorted({span for other in others if other != element for span in _family_spans(other)})
    for onset, _ in _family_spans(element):
        window = _default_window(onset)
        if any(first <= onset and last * (1 + CLEARANCE) >= onset * (1 - PRE_EDGE[1]) for first, last in foreign):
            continue  # another edge at this onset, or its near-edge structure reaching it: a map of both
        below = [last * (1 + CLEARANCE) for first, last in foreign if first < onset]
        above = [first for first, _ in foreign if onset < first < window.post[1]]
        pre = (max([window.pre[0], *below]), window.pre[1])
        post = (onset, min([window.post[1], *above]))
        clean = IntegrationWindow(onset, pre, post)
        pre_share = 0.5 if pre == window.pre else MOVED_PRE_SHARE
        if post[1] - onset >= POST_EDGE_MIN_EV / 2 and _fits(clean, energy, pre_share):
            return clean
    return None


def integration_onset(element: str, energy: np.ndarray) -> float | None:
    """Onset of the lowest major edge of ``element`` whose default windows fit in ``energy``
    (:func:`integration_window` with no other element found).

    The post-edge window must fit whole; the pre-edge window may be cut by the start of the data
    (e.g. C K at 284 eV in a window from 250 eV) as long as at least half of it and
    ``MIN_PRE_CHANNELS`` channels remain.
    """
    window = integration_window(element, energy)
    return None if window is None else window.onset


def edge_intensity(counts: np.ndarray, energy: np.ndarray, onset: float | IntegrationWindow) -> np.ndarray:
    """Power-law background fit before ``onset`` and integrated counts above it, for every spectrum.

    Parameters
    ----------
    counts
        (n, channels) counts.
    energy
        (channels,) energies in eV.
    onset
        Edge onset in eV (from the edge table; the default windows), or the windows themselves
        (:func:`integration_window`).

    Returns
    -------
    numpy.ndarray
        (n,) integrated counts above the extrapolated background ``A * E ** -r`` over the post-edge range
        (by default ``[onset, onset + max(50 eV, 0.1 * onset)]``); NaN where fewer than 3 pre-edge channels hold
        positive counts.
    """
    window = onset if isinstance(onset, IntegrationWindow) else _default_window(onset)
    pre = _channels(energy, window.pre)
    post = _channels(energy, window.post)
    # the least-squares line through (log E, log counts) of each spectrum's positive pre-edge channels, from sums
    # taken as products with the channels' log energies: no (spectra, channels) temporaries beside the logs
    before = np.asarray(counts[:, pre], dtype=np.float64)
    usable = before > 0
    log_energy = np.log(energy[pre])
    y = np.log(np.where(usable, before, 1.0))  # 0 where unusable: out of every sum
    weights = usable.astype(np.float64)
    n = weights.sum(axis=1)
    sx, sxx = weights @ log_energy, weights @ log_energy**2
    sy, sxy = y.sum(axis=1), y @ log_energy
    denominator = n * sxx - sx**2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slope = (n * sxy - sx * sy) / denominator
        intercept = (sy - slope * sx) / n
        background = np.exp(intercept[:, None] + slope[:, None] * np.log(energy[post])[None, :]).sum(axis=1)
        signal = np.asarray(counts[:, post]).sum(axis=1, dtype=np.float64) - background
    return np.where((n >= 3) & np.isfinite(signal), signal, np.nan).astype(np.float32)


def _channels(energy: np.ndarray, span: tuple[float, float]) -> slice:
    """The channels of the increasing axis ``energy`` from ``span[0]`` to ``span[1]`` (both included), as a slice."""
    return slice(int(np.searchsorted(energy, span[0], side="left")), int(np.searchsorted(energy, span[1], side="right")))
