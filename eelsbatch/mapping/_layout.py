"""The maps store: its arrays created up front, filled block by block, and finished at the end."""

from __future__ import annotations

import datetime
import itertools
import json
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from eelsbatch import __version__
from eelsbatch.io import COMPLETE_ATTR, KIND_ATTR, mark_complete

MAP_VARIABLES = {
    "probability": (np.float32, np.nan, "probability that the element is present"),
    "present": (bool, False, "element reported present (probability above threshold; of two elements with coincident edges, the likelier: Recogniser.decide)"),
    "onset_energy": (np.float32, np.nan, "edge onset in eV where present"),
    "edge_intensity": (np.float32, np.nan, "background-subtracted integrated edge counts (power-law fit)"),
}


def blocks(counts: xr.DataArray) -> list[tuple[tuple[int, int], ...]]:
    """``(start, stop)`` per navigation dim of every chunk of the input, in C order."""
    bounds = []
    for sizes in counts.chunks[:-1]:
        ends = np.cumsum((0, *sizes))
        bounds.append(list(zip(ends[:-1].tolist(), ends[1:].tolist())))
    return [tuple(block) for block in itertools.product(*bounds)]


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
    variables["partial_sum"] = xr.DataArray(
        da.zeros((n_blocks, counts.sizes["energy"]), chunks=(1, -1)), dims=("block", "energy"),
        attrs={"long_name": "sum spectrum of each input block (summed into sum_spectrum at the end)"},
    )
    variables["chunk_done"] = xr.DataArray(da.zeros(n_blocks, dtype=bool, chunks=1), dims=("block",))
    dataset = xr.Dataset(variables, coords=coords)
    dataset["onset_energy"].attrs["units"] = "eV"
    dataset["edge_intensity"].attrs["units"] = "counts"
    dataset.attrs = {**provenance, KIND_ATTR: "maps", COMPLETE_ATTR: False}
    dataset.to_zarr(str(output), mode="w", consolidated=False, compute=False)


def finish_maps_store(output: Path, found: list[str], alternatives: dict[str, list[str]]) -> None:
    """Sum the partial spectra, blank the edge intensity of elements found nowhere, record the elements found and
    their alternatives (elements with the same edges in the window), and mark complete."""
    group = zarr.open_group(str(output), mode="r+")
    elements = [str(e) for e in group["element"][:]]
    total = group["partial_sum"][:].sum(axis=0)
    dataset = xr.Dataset({"sum_spectrum": xr.DataArray(total, dims=("energy",), attrs={"long_name": "sum of all spectra"})})
    dataset.to_zarr(str(output), mode="a", consolidated=False)
    intensity = group["edge_intensity"]
    for index, element in enumerate(elements):
        if element not in found:
            intensity[index] = np.nan
    group.attrs["elements_found"] = json.dumps(found)
    group.attrs["alternatives"] = json.dumps(alternatives)
    group.attrs["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    mark_complete(output)


def provenance(input_store: Path, model, threshold: float, extra: dict) -> dict:
    """Attributes that say how the maps were made."""
    return {
        "eelsbatch_version": __version__, "input_store": str(Path(input_store).resolve()),
        "model_name": model.name, "model_sha256": model.sha256, "threshold": threshold,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": json.dumps(extra),
    }
