"""Figures for people: synthetic spectra with their edges, and element maps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eelsbatch.edges import load_edge_table  # noqa: E402
from eelsbatch.synth import ELEMENTS  # noqa: E402


def plot_synthetic_preview(samples: dict[str, np.ndarray], output: str | Path) -> Path:
    """Plot synthetic spectra with every labelled edge onset marked and named.

    Parameters
    ----------
    samples
        Output of :func:`eelsbatch.synth.generate` (a few spectra).
    output
        PNG file to write.
    """
    table = load_edge_table()
    count = len(samples["spectrum"])
    figure, axes = plt.subplots(count, 1, figsize=(10, 2.6 * count), squeeze=False)
    for i, axis in enumerate(axes[:, 0]):
        channels = samples["spectrum"].shape[1]
        energy = samples["energy_offset"][i] + samples["dispersion"][i] * np.arange(channels)
        axis.plot(energy, samples["spectrum"][i], lw=0.7, color="k")
        for channel in np.flatnonzero(samples["onset_label"][i] >= 0):
            edge = table[samples["onset_label"][i][channel]]
            axis.axvline(energy[channel], color="tab:red", lw=0.8, alpha=0.7)
            axis.text(energy[channel], axis.get_ylim()[1] * 0.92, f" {edge.name}", color="tab:red", fontsize=8, rotation=90, va="top")
        present = [ELEMENTS[j] for j in np.flatnonzero(samples["present"][i])]
        axis.set_title(
            f"elements: {', '.join(present) or 'none'}; dose {samples['dose'][i]:.0f} counts/ch, "
            f"t/λ {samples['thickness'][i]:.2f}, {samples['dispersion'][i]:.3f} eV/ch",
            fontsize=9,
        )
        axis.set_ylabel("counts")
    axes[-1, 0].set_xlabel("energy loss (eV)")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return Path(output)
