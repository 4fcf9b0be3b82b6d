"""Write synthetic training sets to Zarr in parallel on a Dask client."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
from distributed import Client

from eelsbatch._version import __version__
from eelsbatch.edges import load_edge_table
from eelsbatch.io import COMPLETE_ATTR, KIND_ATTR, atomic_store
from eelsbatch.synth._elements import ELEMENTS
from eelsbatch.synth._forward import BACKGROUND_H, DEFAULT_QUALITY, NEAR_EDGE_EV, ROSE_SNR, Quality, composition_share
from eelsbatch.synth._generate import PER_CHANNEL, PER_ELEMENT, PER_SAMPLE, check_elements, generate

PRESENT_RULE_ATTR = "present_rule"  # what the ``elements`` (present) label means, recorded with the labels
PRESENT_RULE = f"a K, L2,3, M4,5 or N4,5 onset inside the acquired window, or less than {NEAR_EDGE_EV:g} eV below its first channel"
_DTYPES = {"spectrum": np.float32, "onset_label": np.int16, "present": bool, "detectable": bool,
           "snr": np.float32, "observer_z": np.float32, "jump_ratio": np.float32, "spikes": np.int64, "readout_sectors": np.int64,
           "detector_channels": np.int64, "readout_offset": np.int64,
           "acquired_channels": np.int64, "background_subtracted": np.int64}


def training_dataset(
    n: int, seed: int, channels: int = 2048, chunk_size: int = 1000, composition: Sequence[str] | None = None,
    window: tuple[float, float] | None = None, quality: Quality = DEFAULT_QUALITY,
) -> xr.Dataset:
    """A lazy Dataset of ``n`` labelled spectra: one Dask task per chunk of ``chunk_size`` samples.

    Parameters
    ----------
    n, seed
        Number of spectra and data-set seed (the data depend on these only, not on the chunking).
    channels
        Channels per spectrum.
    chunk_size
        Samples per task and per Zarr chunk.
    composition
        Fixed elements in every spectrum (default: drawn per spectrum).
    window
        Fixed ``(energy_offset, dispersion)`` (default: drawn per spectrum).
    quality
        Ranges of the drawn quality parameters (recorded in the store's attributes).
    """
    pool = ELEMENTS
    starts = range(0, n, chunk_size)
    blocks = [dask.delayed(generate, pure=True)(min(chunk_size, n - s), seed, s, channels, composition, window, quality)
              for s in starts]
    sizes = [min(chunk_size, n - s) for s in starts]

    def stacked(key: str, tail: tuple[int, ...]) -> da.Array:
        dtype = _DTYPES.get(key, np.float64)
        parts = [da.from_delayed(block[key], shape=(size, *tail), dtype=dtype) for block, size in zip(blocks, sizes)]
        return da.concatenate(parts, axis=0)

    variables = {key: (("sample", "channel"), stacked(key, (channels,))) for key in PER_CHANNEL}
    variables.update({key: (("sample", "element"), stacked(key, (len(pool),))) for key in PER_ELEMENT})
    variables.update({key: (("sample",), stacked(key, ())) for key in PER_SAMPLE})
    dataset = xr.Dataset(variables, coords={"element": np.array(pool, dtype=object)})
    dataset = dataset.rename({"present": "elements"})
    table = load_edge_table()
    dataset.attrs = {
        "seed": seed, "channels": channels, "eelsbatch_version": __version__, KIND_ATTR: "training_set",
        COMPLETE_ATTR: False, PRESENT_RULE_ATTR: PRESENT_RULE, "detectable_rule": f"present and edge SNR >= {ROSE_SNR} (Rose criterion), SNR = S / sqrt(S + {BACKGROUND_H:g} B + (g B)^2)",
        "quality": repr(quality), "composition": ",".join(composition or []),
        # each element's share of the compositions drawn: the training prior a model trained here learns
        "composition_share": dict(zip(pool, composition_share(quality, pool, composition).round(5).tolist())),
        "onset_label_edges": [edge.name for edge in table],
        "description": "Synthetic core-loss EELS spectra from the eelsbatch forward model (eelsbatch.synth).",
    }
    return dataset


def write_training_set(
    output: str | Path,
    n: int,
    seed: int,
    client: Client,
    channels: int = 2048,
    chunk_size: int = 1000,
    composition: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    overwrite: bool = False,
    quality: Quality = DEFAULT_QUALITY,
) -> Path:
    """Generate ``n`` labelled spectra on ``client`` and write them to the Zarr store ``output``.

    Parameters
    ----------
    output
        Store to create (written under a temporary name, marked complete, then moved into place).
    n, seed, channels, chunk_size, composition, window, quality
        See :func:`training_dataset`.
    client
        Dask client whose workers generate the chunks.
    overwrite
        Replace an existing store.
    """
    if n < 1:
        generate(n, seed)  # raises the one-line error
    if composition:
        check_elements(composition)
    dataset = training_dataset(n, seed, channels, chunk_size, composition, window, quality)
    with atomic_store(output, overwrite) as temporary:
        client.compute(dataset.to_zarr(str(temporary), mode="w", consolidated=False, compute=False)).result()
    return Path(output)
