"""Spatially structured synthetic spectrum images with ground-truth element maps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from distributed import Client

from eelsbatch.errors import InputError
from eelsbatch.io import write_store
from eelsbatch.synth._forward import STRONG, major_onsets, simulate

# Phases (element sets) of each structure; every phase's elements are drawn with strong edges.
STRUCTURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "core-shell": (("C",), ("Ce", "O"), ("Fe", "O")),  # carbon support, CeO2 shell, iron-oxide core
    "multilayer": (("La", "Mn", "O"), ("Sr", "Ti", "O"), ("Ni", "O"), ("Cu",)),
    "grains": (("Fe", "O"), ("Ni", "O"), ("Ba", "Ti", "O"), ("Cu",), ("C",)),
}
DEFAULT_WINDOW = (250.0, 0.5)  # 250 to 1274 eV over 2048 channels: C, N, Ti, O, Mn, Fe, Ni, Cu, Ba, La, Ce edges
# One acquisition of one specimen: the dose varies by about +-12 % between pixels (beam current, thickness), the
# background's slope and the edges' strength a little, not tenfold and across 2-5 in the exponent as between the
# training set's spectra, which left the edge-intensity maps as speckle.
IMAGE_QUALITY = dataclasses.replace(STRONG, log_dose=(4.45, 4.55), background_exponent=(2.9, 3.1),
                                    log_jump_minus_one=(-0.15, 0.0))


def phase_map(structure: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Integer phase index per pixel for ``structure`` on a ``shape`` = (ny, nx) grid."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    if structure == "core-shell":
        radius = np.hypot((y - (ny - 1) / 2) / ny, (x - (nx - 1) / 2) / nx)
        return np.select([radius < 0.22, radius < 0.38], [2, 1], default=0)
    if structure == "multilayer":
        return np.minimum((y * len(STRUCTURES["multilayer"])) // ny, len(STRUCTURES["multilayer"]) - 1)
    rng = np.random.default_rng([seed, 1])
    centres = rng.uniform(0, 1, (9, 2)) * (ny, nx)
    nearest = np.argmin((y[..., None] - centres[:, 0]) ** 2 + (x[..., None] - centres[:, 1]) ** 2, axis=-1)
    return nearest % len(STRUCTURES["grains"])


def _pixels(index: np.ndarray, phase: np.ndarray, seed: int, channels: int, window: tuple[float, float],
            structure: str) -> np.ndarray:
    phases = STRUCTURES[structure]
    out = np.empty((*index.shape, channels), np.float32)
    for position in np.ndindex(index.shape):
        rng = np.random.default_rng([seed, int(index[position])])
        out[position] = simulate(rng, channels, list(phases[phase[position]]), window, IMAGE_QUALITY)["spectrum"]
    return out


def check_window(window: tuple[float, float], channels: int) -> None:
    """Refuse an energy grid that misses the edge table's 50 to 3000 eV."""
    offset, dispersion = window
    if dispersion <= 0 or offset + channels * dispersion < 50.0 or offset > 3000.0:
        raise InputError(
            None, f"energy grid {offset:g} to {offset + channels * dispersion:g} eV lies outside the edge table's 50-3000 eV"
        )


def spectrum_image(
    structure: str, shape: tuple[int, int], seed: int, channels: int = 2048,
    window: tuple[float, float] = DEFAULT_WINDOW, chunk: int = 16,
) -> tuple[xr.DataArray, xr.DataArray]:
    """A lazy structured spectrum image and its ground truth.

    Returns
    -------
    counts : xarray.DataArray
        (y, x, energy) counts, one Dask task per ``chunk`` x ``chunk`` pixels.
    truth : xarray.DataArray
        (element, y, x) bool: the element is in the pixel's phase and has a major edge in the window.
    """
    if structure not in STRUCTURES:
        raise InputError(None, f"unknown structure {structure!r}; choose from {', '.join(STRUCTURES)}")
    check_window(window, channels)
    phases = phase_map(structure, shape, seed)
    offset, dispersion = window
    energy = offset + dispersion * np.arange(channels)
    index = da.arange(shape[0] * shape[1], chunks=-1).reshape(shape).rechunk(chunk)
    data = da.map_blocks(
        _pixels, index, da.from_array(phases, chunks=chunk), seed, channels, window, structure,
        new_axis=2, chunks=(*index.chunks, (channels,)), dtype=np.float32,
    )
    coords = {
        "y": ("y", np.arange(shape[0]) * 1.0, {"units": "nm"}),
        "x": ("x", np.arange(shape[1]) * 1.0, {"units": "nm"}),
        "energy": ("energy", energy, {"units": "eV", "long_name": "energy loss"}),
    }
    counts = xr.DataArray(data, dims=("y", "x", "energy"), coords=coords, name="counts")
    elements = list(dict.fromkeys(e for phase in STRUCTURES[structure] for e in phase))
    visible = [e for e in elements if any(energy[0] <= o <= energy[-1] for o in major_onsets(e))]
    truth = np.stack([np.isin(phases, [i for i, p in enumerate(STRUCTURES[structure]) if e in p]) for e in visible])
    truth_map = xr.DataArray(
        truth, dims=("element", "y", "x"), coords={"element": np.array(visible, dtype=object), "y": coords["y"], "x": coords["x"]}
    )
    counts.attrs = {
        "beam_energy_keV": 200.0, "convergence_angle_mrad": 20.0, "collection_angle_mrad": 50.0,
        "dispersion_eV": dispersion, "source_file": f"synthetic {structure} seed={seed}",
        "signal_title": f"synthetic {structure}", "original_metadata": "{}",
    }
    return counts, truth_map


def write_spectrum_image(
    output: str | Path, structure: str, shape: tuple[int, int], seed: int, client: Client,
    channels: int = 2048, window: tuple[float, float] = DEFAULT_WINDOW, overwrite: bool = False, chunk: int = 16,
) -> Path:
    """Write a structured synthetic spectrum image in ``convert``'s store layout plus ``truth`` maps.

    ``chunk`` x ``chunk`` pixels make one task and one Zarr chunk.
    """
    counts, truth = spectrum_image(structure, shape, seed, channels, window, chunk)
    return write_store(counts, output, chunks=[chunk, chunk], overwrite=overwrite, extra={"truth": truth}, client=client)
