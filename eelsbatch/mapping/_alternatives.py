"""Alternatives of a found element: the elements whose edges in the acquired window look the same."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eelsbatch.edges import window_twins


def describe_found(found: Sequence[str], alternatives: dict[str, list[str]]) -> str:
    """``found`` as text, each element followed by its alternatives (``Co (or Ba)``), or ``none``."""
    return ", ".join(f"{e} (or {', '.join(alternatives[e])})" if alternatives.get(e) else e for e in found) or "none"


def found_alternatives(found: Sequence[str], energy: np.ndarray, elements: Sequence[str]) -> dict[str, list[str]]:
    """For each found element, the model's other elements whose edges in the acquired window are the same
    (:func:`~eelsbatch.edges.window_twins`: a map of either would look alike); only non-empty entries."""
    low, high = float(np.min(energy)), float(np.max(energy))
    return {element: twins for element in found if (twins := window_twins(element, found, low, high, elements))}
