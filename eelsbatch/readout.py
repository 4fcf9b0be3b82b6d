"""Detector readout sectors: where the ports of a detector read out through several start on its channel axis.

A camera read out through 2 or 4 ports gives each sector its own gain, so a flat spectrum steps at the
sector boundaries. The forward model draws such steps (:mod:`eelsbatch.synth`) and the recogniser is told
where they can fall (:meth:`eelsbatch.model.ModelGrid.readout_boundaries`), both from this layout.
"""

from __future__ import annotations

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
