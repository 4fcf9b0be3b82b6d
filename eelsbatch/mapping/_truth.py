"""Compare maps with the ground truth of a synthetic spectrum image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eelsbatch.io import open_store


def intersection_over_union(maps: str | Path, spectrum_image: str | Path) -> dict[str, float]:
    """Per-element IoU of the ``present`` map with the ``truth`` map, for every true or found element."""
    found = open_store(maps, kind="maps")["present"]
    truth = open_store(spectrum_image)["truth"]
    elements = sorted(set(map(str, truth["element"].values)) | {str(e) for e in found["element"].values if bool(found.sel(element=e).any())})
    scores = {}
    for element in elements:
        predicted = found.sel(element=element).values if element in found["element"] else np.zeros(truth.shape[1:], bool)
        actual = truth.sel(element=element).values if element in truth["element"] else np.zeros_like(predicted)
        union = np.logical_or(predicted, actual).sum()
        scores[element] = float(np.logical_and(predicted, actual).sum() / union) if union else 1.0
    return scores
