"""The maps store: its arrays created up front, filled block by block, and finished at the end.

The user's maps are arrays of the root group; the run's bookkeeping (which blocks are done, each block's sum
spectrum, its count of pixels reporting each element and of pixels that could not be judged) lives in the
``progress`` sub-group, which a plain ``xr.open_zarr`` does not show. Finishing reads only that bookkeeping and
makes one pass over ``edge_intensity`` on the workers, and never clears what identifies the run (model, input), so a finish cut short
by a kill, an out-of-memory or a walltime resumes.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from eelsbatch._version import __version__
from eelsbatch.io import COMPLETE_ATTR, KIND_ATTR, mark_complete

PROGRESS = "progress"  # the sub-group of the run's bookkeeping
SUMMED_BLOCKS = 1024  # blocks' partial sums read at once when summing them (bounds the finish step's memory)

MAP_VARIABLES = {
    "probability": (np.float32, np.nan, "probability that the element is present"),
    "present": (bool, False, "element reported present (probability above threshold; of two elements with coincident edges, the likelier: Recogniser.decide)"),
    "onset_energy": (np.float32, np.nan, "edge onset in eV where present"),
    "edge_intensity": (np.float32, np.nan, "background-subtracted integrated edge counts (power-law fit)"),
}
VALID_DESCRIPTION = ("pixel judged: its spectrum has enough finite channels on the model grid "
                     "(False: every map of the pixel is empty or NaN)")
Region = tuple[slice, ...]


def blocks(counts: xr.DataArray) -> list[tuple[tuple[int, int], ...]]:
    """``(start, stop)`` per navigation dim of every chunk of the input, in C order."""
    bounds = []
    for sizes in counts.chunks[:-1]:
        ends = np.cumsum((0, *sizes))
        bounds.append(list(zip(ends[:-1].tolist(), ends[1:].tolist())))
    return [tuple(block) for block in itertools.product(*bounds)]


def region_of(block: tuple[tuple[int, int], ...]) -> Region:
    """The navigation slices of a block."""
    return tuple(slice(a, b) for a, b in block)


def create_maps_store(output: Path, counts: xr.DataArray, elements: list[str], provenance: dict) -> None:
    """Write the maps store's metadata and coordinates; every data chunk stays unwritten (fill values)."""
    nav = list(counts.dims[:-1])
    nav_chunks = tuple(sizes[0] for sizes in counts.chunks[:-1])
    n_blocks = len(blocks(counts))
    coords = {dim: counts[dim] for dim in nav}
    coords["element"] = ("element", np.array(elements, dtype=object))
    coords["energy"] = counts["energy"]
    variables = {}
    for name, (dtype, fill, description) in MAP_VARIABLES.items():
        shape = (len(elements), *counts.shape[:-1])
        data = da.full(shape, fill, dtype=dtype, chunks=(len(elements), *nav_chunks))
        variables[name] = xr.DataArray(data, dims=("element", *nav), attrs={"long_name": description})
    variables["valid"] = xr.DataArray(da.zeros(counts.shape[:-1], dtype=bool, chunks=nav_chunks), dims=nav,
                                      attrs={"long_name": VALID_DESCRIPTION})
    variables["sum_spectrum"] = xr.DataArray(da.zeros(counts.sizes["energy"], chunks=-1), dims=("energy",),
                                             attrs={"long_name": "sum of all spectra (finite channels)"})
    dataset = xr.Dataset(variables, coords=coords)
    dataset["onset_energy"].attrs["units"] = "eV"
    dataset["edge_intensity"].attrs["units"] = "counts"
    dataset.attrs = {**provenance, KIND_ATTR: "maps", COMPLETE_ATTR: False}
    dataset.to_zarr(str(output), mode="w", consolidated=False, compute=False)
    progress = zarr.open_group(str(output), mode="r+").create_group(PROGRESS)
    progress.create_array("chunk_done", shape=(n_blocks,), chunks=(1,), dtype=bool, fill_value=False)
    progress.create_array("partial_sum", shape=(n_blocks, counts.sizes["energy"]), chunks=(1, counts.sizes["energy"]),
                          dtype=np.float64, fill_value=0.0)
    progress.create_array("present_pixels", shape=(n_blocks, len(elements)), chunks=(1, len(elements)),
                          dtype=np.int64, fill_value=0)
    progress.create_array("invalid_pixels", shape=(n_blocks,), chunks=(1,), dtype=np.int64, fill_value=0)


def record_block(target: zarr.Group, index: int, partial_sum: np.ndarray, present_pixels: np.ndarray,
                 invalid_pixels: int) -> None:
    """A block's bookkeeping, written after its maps; its done-marker last, so a marked block is whole."""
    progress = target[PROGRESS]
    progress["partial_sum"][index] = partial_sum
    progress["present_pixels"][index] = present_pixels
    progress["invalid_pixels"][index] = invalid_pixels
    progress["chunk_done"][index] = True


def done_blocks(output: Path) -> np.ndarray:
    """(blocks,) bool: the blocks whose maps are written."""
    return zarr.open_group(str(output), mode="r")[PROGRESS]["chunk_done"][:]


def pixel_tallies(output: Path) -> tuple[np.ndarray, int, int]:
    """Over all blocks: pixels reporting each element (elements,), pixels not judged, and all pixels."""
    group = zarr.open_group(str(output), mode="r")
    progress = group[PROGRESS]
    pixels = int(np.prod(group["valid"].shape))
    return progress["present_pixels"][:].sum(axis=0), int(progress["invalid_pixels"][:].sum()), pixels


def finish_maps_store(output: Path, found: Sequence[str], alternatives: dict[str, list[str]], invalid_pixels: int,
                      windows: dict[str, dict | None]) -> None:
    """Sum the partial spectra, record the elements found, their alternatives, their classic maps' windows and the
    pixels not judged, and mark complete; call once every block's maps are final (``finish_chunk``).

    Every step may be repeated: a finish cut short is finished again by ``map --resume``. The root attributes that
    identify the run are updated, never replaced.

    Parameters
    ----------
    output
        The maps store.
    found, alternatives
        The elements found and, for each, the elements whose edges look the same in the window.
    invalid_pixels
        Pixels that could not be judged (recorded as ``invalid_pixels``).
    windows
        Each found element's classic-map windows (:meth:`IntegrationWindow.to_dict`; None: no clean window).
    """
    group = zarr.open_group(str(output), mode="r+")
    group.attrs.update({"elements_found": json.dumps(list(found)), "alternatives": json.dumps(alternatives),
                        "invalid_pixels": invalid_pixels, "integration_windows": json.dumps(windows)})
    partial = group[PROGRESS]["partial_sum"]
    total = np.zeros(partial.shape[1])
    for start in range(0, partial.shape[0], SUMMED_BLOCKS):
        total += partial[start : start + SUMMED_BLOCKS].sum(axis=0)
    group["sum_spectrum"][:] = total
    group.attrs["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    mark_complete(output)


def provenance(input_store: Path, input_id: str | None, model, threshold: float, extra: dict) -> dict:
    """Attributes that say how the maps were made (``input_store_id``: the input store's write, see
    :func:`eelsbatch.io.store_id`)."""
    return {
        "eelsbatch_version": __version__, "input_store": str(Path(input_store).resolve()), "input_store_id": input_id or "",
        "model_name": model.name, "model_sha256": model.sha256, "threshold": threshold,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": json.dumps(extra),
    }
