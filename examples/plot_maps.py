"""Open the maps written by ``eelsbatch map`` with xarray, and plot them yourself.

Usage::

    eelsbatch demo                                   # writes eelsbatch-demo/maps.zarr
    python examples/plot_maps.py eelsbatch-demo/maps.zarr --out my_maps.png

The maps store is a plain xarray Dataset in Zarr: ``probability``, ``present``, ``onset_energy`` and
``edge_intensity`` with dims ``(element, <navigation dims>)``, the ``sum_spectrum`` over ``energy``, and
provenance in ``.attrs``. This script shows the usual things to do with it:

1. list the elements found, with the share of pixels where each one is present and its look-alikes (elements
   whose edges in the window are the same, which the spectra cannot tell from it);
2. a facet plot of the presence probability of the found elements (``xarray.plot`` with ``col=``);
3. a red-green-blue overlay of up to three elements' edge-intensity maps;
4. the mean spectrum of the pixels where each element is present against those where it is not, read
   from the input store named in the maps' attributes, lazily, chunk by chunk.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def _normalised(image: xr.DataArray) -> np.ndarray:
    """Edge intensity scaled to 0..1 between its 2nd and 98th percentiles (robust to a few outliers)."""
    values = image.values
    low, high = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0.0, 1.0)
    return np.nan_to_num(np.clip((values - low) / (high - low or 1.0), 0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("maps", type=Path, help="maps store written by `eelsbatch map`")
    parser.add_argument("--out", type=Path, default=Path("my_maps.png"), help="PNG to write")
    arguments = parser.parse_args()

    maps = xr.open_zarr(arguments.maps)
    if not maps.attrs.get("eelsbatch_complete"):
        raise SystemExit(f"{arguments.maps}: the map run did not finish (use `eelsbatch map --resume`)")
    found = json.loads(maps.attrs["elements_found"])
    alternatives = json.loads(maps.attrs.get("alternatives", "{}"))  # absent in stores written before look-alikes were recorded
    nav = [dim for dim in maps["present"].dims if dim != "element"]
    print(f"model {maps.attrs['model_name']} (sha256 {maps.attrs['model_sha256'][:12]}...), "
          f"threshold {maps.attrs['threshold']}, input {maps.attrs['input_store']}")
    for element in found:
        share = float(maps["present"].sel(element=element).mean())
        look_alikes = f" (or {', '.join(alternatives[element])}: same edges in this window)" if element in alternatives else ""
        print(f"  {element:>2}: present in {share:6.1%} of the pixels{look_alikes}")
    if len(nav) < 2 or not found:
        print("nothing to draw as images (a single spectrum or a line scan, or no element found)")
        return
    frame = {dim: 0 for dim in nav[:-2]}  # 4D maps (e.g. t, y, x): the first frame

    figure = plt.figure(figsize=(3.2 * max(len(found), 3), 7.5))
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.1])
    axes = top.subplots(1, len(found), squeeze=False)[0]
    for axis, element in zip(axes, found):
        maps["probability"].sel(element=element).isel(frame).plot.imshow(ax=axis, vmin=0, vmax=1, add_colorbar=False)
        axis.set_title(f"{element}: probability")
        axis.set_aspect("equal")

    overlay_axis, spectrum_axis = bottom.subplots(1, 2, width_ratios=[1, 2])
    rgb = np.zeros((*maps["edge_intensity"].isel(element=0, **frame).shape, 3))
    for channel, element in enumerate(found[:3]):
        rgb[..., channel] = _normalised(maps["edge_intensity"].sel(element=element).isel(frame))
    overlay_axis.imshow(rgb)
    overlay_axis.set_title("edge intensity: " + ", ".join(f"{e} {c}" for e, c in zip(found[:3], ("red", "green", "blue"))))
    overlay_axis.axis("off")

    counts = xr.open_zarr(maps.attrs["input_store"])["counts"]
    for element in found:
        present = maps["present"].sel(element=element, drop=True)
        inside = counts.where(present).mean(nav)
        spectrum_axis.plot(counts["energy"], inside, lw=0.8, label=f"{element} present")
    spectrum_axis.plot(counts["energy"], maps["sum_spectrum"] / np.prod([maps.sizes[d] for d in nav]), "k", lw=0.8, label="all pixels")
    spectrum_axis.set_xlabel("energy loss (eV)")
    spectrum_axis.set_ylabel("mean counts")
    spectrum_axis.set_yscale("log")
    spectrum_axis.legend(fontsize=8)
    figure.savefig(arguments.out, dpi=90)
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
