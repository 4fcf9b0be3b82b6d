"""Detector readout sectors: where the ports of a detector read out through several start on its channel axis.

A camera read out through 2 or 4 ports gives each sector its own gain, so a flat spectrum steps at the
sector boundaries. The forward model draws such steps (:mod:`eelsbatch.synth`) and the recogniser is told
where they can fall (:meth:`eelsbatch.model.ModelGrid.readout_boundaries`), both from this layout. Where the
layout is known otherwise (a spectrum cropped before saving, other ports), ``convert --sector-starts`` records it in
the store (``SECTOR_STARTS_ATTR``) and the recogniser marks those channels instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

READOUT_SECTORS = (2, 4)  # ports a detector is read out through, each sector an equal share of the channels


def sector_starts(channels: int, sectors: int) -> np.ndarray:
    """First channel of each sector after the first, for ``channels`` read out through ``sectors`` ports."""
    size = -(-channels // sectors)
    return np.arange(1, sectors) * size


def boundary_channels(channels: int) -> np.ndarray:
    """Channels that start a sector in any of the layouts of ``READOUT_SECTORS`` (sorted, unique)."""
    starts = np.concatenate([sector_starts(channels, sectors) for sectors in READOUT_SECTORS])
    return np.unique(starts[starts < channels])


SECTOR_STARTS_ATTR = "readout_sector_starts"  # store attribute: a known layout, channels where a sector starts


def parse_sector_starts(text: str) -> list[int]:
    """Channels where a readout sector starts, from ``"1024"``, ``"512,1024,1536"`` or ``"none"`` (one port).

    Raises
    ------
    ValueError
        If an entry is not an integer (the message says which).
    """
    if text.strip().lower() == "none":
        return []
    starts = []
    for entry in text.split(","):
        try:
            starts.append(int(entry))
        except ValueError:
            raise ValueError(f"sector start {entry.strip()!r} is not a channel number (give e.g. 1024, 512,1024,1536 or none)") from None
    return starts


def check_sector_starts(starts: Sequence[int], channels: int) -> list[int]:
    """``starts`` as a sorted list of ints, each a channel from 1 to ``channels - 1``.

    Raises
    ------
    ValueError
        If a start lies outside the axis (the message says which).
    """
    for channel in starts:
        if not 1 <= int(channel) < channels:
            raise ValueError(f"readout sector start {channel} is outside the energy axis's channels 1 to {channels - 1}")
    return sorted({int(channel) for channel in starts})


def chosen_sector_starts(given: Sequence[int] | None, recorded: Sequence[int] | None, channels: int) -> list[int] | None:
    """The layout to mark: ``given`` (an option), else ``recorded`` (a store's ``SECTOR_STARTS_ATTR``), checked against
    an axis of ``channels`` (:func:`check_sector_starts`); None where neither is known (every equal-share start)."""
    starts = recorded if given is None else given
    return None if starts is None else check_sector_starts(starts, channels)
