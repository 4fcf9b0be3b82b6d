"""Compare maps with the ground truth of a synthetic spectrum image."""

from __future__ import annotations

from pathlib import Path

from eelsbatch.io import open_store


def compare_with_truth(maps: str | Path, spectrum_image: str | Path) -> tuple[dict[str, float], dict[str, int]]:
    """IoU of the ``present`` map with the ``truth`` map for each element of the truth, and, apart, the pixels
    reporting each element that the truth holds nowhere (stray pixels: not an IoU of 0, which reads as a failure)."""
    found = open_store(maps, kind="maps")["present"]
    truth = open_store(spectrum_image)["truth"]
    true_elements = [str(e) for e in truth["element"].values]
    scores = {}
    for element in true_elements:
        predicted, actual = found.sel(element=element).values, truth.sel(element=element).values
        union = (predicted | actual).sum()
        scores[element] = float((predicted & actual).sum() / union) if union else 1.0
    stray = {str(e): int(found.sel(element=e).sum()) for e in found["element"].values if str(e) not in true_elements}
    return scores, {element: pixels for element, pixels in stray.items() if pixels}
