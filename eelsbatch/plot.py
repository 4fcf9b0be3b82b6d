"""Figures for people: synthetic spectra with their edges, element maps, and a recogniser's evaluation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from eelsbatch.edges import load_edge_table  # noqa: E402
from eelsbatch.errors import EelsbatchError, StoreError  # noqa: E402


def check_image_output(output: str | Path) -> Path:
    """Refuse an image path that ``savefig`` would fail on, before any rendering (a large figure takes seconds).

    Parameters
    ----------
    output
        The image file to write; its extension (default PNG) names the format.

    Raises
    ------
    EelsbatchError
        If ``output`` is a folder, has an extension matplotlib cannot write, or lies in a folder that is missing or
        cannot be written.
    """
    output = Path(output)
    if output.is_dir():
        raise StoreError(output, "is a folder; give the name of the image file to write")
    formats = FigureCanvasBase.get_supported_filetypes()
    if output.suffix and output.suffix.lstrip(".").lower() not in formats:
        raise StoreError(output, f"unsupported image format {output.suffix!r} (use {', '.join('.' + f for f in sorted(formats))})")
    folder = output.parent
    if not folder.is_dir():
        raise StoreError(output, f"cannot write the image: its folder {folder} does not exist")
    try:  # a probe file, not the output itself: a failed plot must not leave an empty image behind
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{output.name}.probe-"):
            pass
    except OSError as error:
        raise StoreError(output, f"cannot write the image ({error.strerror or error.__class__.__name__})") from None
    return output


def plot_synthetic_preview(samples: dict[str, np.ndarray], output: str | Path) -> Path:
    """Plot synthetic spectra with every labelled edge onset marked and named.

    Parameters
    ----------
    samples
        Output of :func:`eelsbatch.synth.generate` (a few spectra).
    output
        PNG file to write.
    """
    from eelsbatch.synth import ELEMENTS  # the columns of the samples' labels

    output = check_image_output(output)
    table = load_edge_table()
    count = len(samples["spectrum"])
    figure, axes = plt.subplots(count, 1, figsize=(10, 2.6 * count), squeeze=False)
    for i, axis in enumerate(axes[:, 0]):
        channels = samples["spectrum"].shape[1]
        energy = samples["energy_offset"][i] + samples["dispersion"][i] * np.arange(channels)
        axis.semilogy(energy, np.clip(samples["spectrum"][i], 1.0, None), lw=0.7, color="k")
        for channel in np.flatnonzero(samples["onset_label"][i] >= 0):
            edge = table[samples["onset_label"][i][channel]]
            axis.axvline(energy[channel], color="tab:red", lw=0.8, alpha=0.7)
            axis.text(energy[channel], 0.95, f" {edge.name}", color="tab:red", fontsize=8, rotation=90, va="top",
                      transform=axis.get_xaxis_transform())
        present = [ELEMENTS[j] for j in np.flatnonzero(samples["present"][i])]
        axis.set_title(
            f"elements: {', '.join(present) or 'none'}; dose {samples['dose'][i]:.0f} counts/ch, "
            f"t/λ {samples['thickness'][i]:.2f}, {samples['dispersion'][i]:.3f} eV/ch",
            fontsize=9,
        )
        axis.set_ylabel("counts (log)")
    axes[-1, 0].set_xlabel("energy loss (eV)")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def plot_evaluation(metrics: dict, output: str | Path) -> Path:
    """Per-element F1 and accuracy against SNR and dose, as one PNG.

    Parameters
    ----------
    metrics
        :func:`eelsbatch.model._evaluate.evaluate_store`'s result.
    output
        PNG file to write.
    """
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [3, 1, 1]})
    elements = list(metrics["per_element"])
    axes[0].bar(elements, [metrics["per_element"][e]["f1"] for e in elements], color="tab:blue")
    axes[0].set_ylabel("F1")
    axes[0].set_ylim(0, 1.02)
    axes[0].tick_params(axis="x", labelsize=7, rotation=90)
    axes[0].set_title(f"exact element-set accuracy {metrics['exact_match']:.3f} on {metrics['spectra']} spectra")
    for axis, key, label in ((axes[1], "accuracy_vs_weakest_edge_snr", "weakest edge SNR"), (axes[2], "accuracy_vs_dose", "dose (counts/ch)")):
        rows = metrics[key]
        axis.bar(range(len(rows)), [r["accuracy"] for r in rows])
        axis.set_xticks(range(len(rows)), [f"{r['low']:.0f}-{r['high']:.0f}" if np.isfinite(r["high"]) else f">{r['low']:.0f}" for r in rows], rotation=45, fontsize=7)
        axis.set_xlabel(label)
        axis.set_ylabel("exact accuracy")
        axis.set_ylim(0, 1.02)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return Path(output)


def _scale_bar(axis, extent_x: float, units: str) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    if not extent_x > 0:
        return
    nice = 10 ** np.floor(np.log10(extent_x / 4))
    length = max(v * nice for v in (1, 2, 5) if v * nice <= extent_x / 3)
    label = f"{length:g} {units}".strip()
    axis.add_artist(AnchoredSizeBar(axis.transData, length, label, "lower right", pad=0.3, color="white", frameon=False, size_vertical=extent_x / 80))


def edge_marks(found: list[str], energy: np.ndarray) -> list[tuple[float, str]]:
    """(onset, label) of each major edge of the found elements inside ``energy``; one label per edge family at its
    first onset (``Fe L2,3``), the family's other onsets unlabelled (Fe L3 and L2, 13 eV apart, overlapped)."""
    from eelsbatch.edges import MAJOR_FAMILIES, edges_of

    marks = []
    for element in found:
        labelled = set()
        for edge in sorted(edges_of(element), key=lambda e: e.onset_eV):
            if edge.family in MAJOR_FAMILIES and energy[0] <= edge.onset_eV <= energy[-1]:
                marks.append((edge.onset_eV, "" if edge.family in labelled else f"{element} {edge.family}"))
                labelled.add(edge.family)
    return marks


def colour_limits(name: str, values: np.ndarray) -> dict[str, float]:
    """Probabilities on 0-1; intensities between their 1st and 99th percentiles, so that a few bright pixels (spikes,
    a thick edge) do not leave the rest of the map in one colour."""
    if name == "probability":
        return {"vmin": 0.0, "vmax": 1.0}
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {}
    low, high = np.percentile(finite, [1, 99])
    return {"vmin": float(low), "vmax": float(high)} if high > low else {}


def plot_maps(maps: str | Path, output: str | Path) -> Path:
    """Element maps (probability and edge intensity) with scale bars, and the sum spectrum with found edges.

    Parameters
    ----------
    maps
        Store written by ``eelsbatch map``.
    output
        PNG file to write.
    """
    import json

    from eelsbatch.io import open_store
    from eelsbatch.mapping._alternatives import describe_found

    output = check_image_output(output)
    dataset = open_store(maps, kind="maps")
    found = json.loads(dataset.attrs.get("elements_found", "[]"))
    alternatives = json.loads(dataset.attrs.get("alternatives", "{}"))
    nav = [dim for dim in dataset["probability"].dims if dim != "element"]
    extra = {dim: 0 for dim in nav[:-2]}  # 4D maps: show the first frame of the leading dims
    rows = len(found) if len(nav) >= 2 else 0
    figure = plt.figure(figsize=(8, 2.8 * rows + 3.2))
    grid = figure.add_gridspec(rows + 1, 2, height_ratios=[2.8] * rows + [3.2])
    for row, element in enumerate(found[:rows]):  # no image rows for a single spectrum or a line scan
        for column, (name, label, cmap) in enumerate((("probability", "probability", "viridis"), ("edge_intensity", "edge intensity (counts)", "magma"))):
            axis = figure.add_subplot(grid[row, column])
            image = dataset[name].sel(element=element).isel(extra)
            y, x = image[nav[-2]].values, image[nav[-1]].values
            extent = (x[0], x[-1], y[-1], y[0]) if x.size > 1 and y.size > 1 else None
            shown = axis.imshow(image.values, extent=extent, cmap=cmap, **colour_limits(name, image.values))
            figure.colorbar(shown, ax=axis, fraction=0.046)
            axis.set_title(f"{describe_found([element], alternatives)}: {label}", fontsize=10)
            axis.set_xticks([])
            axis.set_yticks([])
            if extent is not None:
                _scale_bar(axis, abs(x[-1] - x[0]), dataset[nav[-1]].attrs.get("units", ""))
    axis = figure.add_subplot(grid[rows, :])
    energy = dataset["energy"].values
    axis.semilogy(energy, np.clip(dataset["sum_spectrum"].values, 1e-3, None), color="k", lw=0.8)
    for onset, label in edge_marks(found, energy):
        axis.axvline(onset, color="tab:red", lw=0.8)
        if label:
            axis.text(onset, 0.95, f" {label}", color="tab:red", fontsize=8, rotation=90, va="top",
                      transform=axis.get_xaxis_transform())
    axis.set_xlabel("energy loss (eV)")
    axis.set_ylabel("counts (sum)")
    axis.set_title(f"sum spectrum; elements found: {describe_found(found, alternatives)} (model {dataset.attrs.get('model_name')})", fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
