"""Blocks of labelled spectra, reproducible per sample whatever the chunking or the workers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eelsbatch.edges import edges_of
from eelsbatch.errors import InputError
from eelsbatch.synth._elements import ELEMENTS
from eelsbatch.synth._forward import DEFAULT_QUALITY, Quality, simulate

PER_SAMPLE = (
    "energy_offset", "dispersion", "energy_shift", "dispersion_error", "background_exponent", "dose",
    "gain_nonuniformity", "read_noise", "dark_offset", "spikes", "readout_sectors", "detector_channels", "readout_offset", "thickness", "plasmon_energy",
    "resolution", "acquired_channels", "background_subtracted",
)
PER_ELEMENT = ("present", "detectable", "snr", "observer_z", "jump_ratio")
PER_CHANNEL = ("spectrum", "onset_label")


def check_elements(elements: Sequence[str]) -> list[str]:
    """Validate element symbols against the edge table (one-line error for an unknown one)."""
    for element in elements:
        edges_of(element)
    return list(elements)


def generate(
    n: int,
    seed: int,
    start: int = 0,
    channels: int = 2048,
    composition: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    quality: Quality = DEFAULT_QUALITY,
    pool: Sequence[str] = ELEMENTS,
) -> dict[str, np.ndarray]:
    """Simulate samples ``start .. start + n - 1`` of the data set drawn with ``seed``.

    Sample ``i`` uses its own generator seeded with ``(seed, i)``, so any split of the samples into
    blocks, on any number of workers, gives identical data.

    Parameters
    ----------
    n, seed, start
        Number of samples, data-set seed, index of the first sample.
    channels
        Channels per spectrum.
    composition, window, quality, pool
        See :func:`eelsbatch.synth._forward.simulate`.

    Returns
    -------
    dict of numpy arrays
        ``spectrum`` (n, channels) float32, ``onset_label`` (n, channels) int16, ``present``,
        ``detectable``, ``snr``, ``observer_z``, ``jump_ratio`` (n, len(pool)), and the scalar parameters (n,).
    """
    if n < 1:
        raise InputError(None, f"the number of spectra must be positive, not {n}")
    samples = [
        simulate(np.random.default_rng([seed, start + i]), channels, composition, window, quality, pool)
        for i in range(n)
    ]
    return {key: np.stack([sample[key] for sample in samples]) for key in (*PER_CHANNEL, *PER_ELEMENT, *PER_SAMPLE)}
