"""Which elements to report, from calibrated probabilities: the threshold and the coincident-edge rule."""

from __future__ import annotations

import numpy as np


def report(probability: np.ndarray, threshold: float, coincident: np.ndarray) -> np.ndarray:
    """Elements reported: above ``threshold``, or the likelier of two coincident ones that together are.

    Two elements with coincident edges are two exclusive explanations of one edge, which the network may split
    between them: where neither is above the threshold but the two together are, the likelier one is reported
    (only if it is the likeliest of its unreported coincident elements).

    Parameters
    ----------
    probability
        (n, elements) calibrated probabilities.
    threshold
        Presence threshold.
    coincident
        (elements, elements) bool pairs of elements with coincident edges
        (:func:`~eelsbatch.edges.coincident_elements`).

    Returns
    -------
    numpy.ndarray
        (n, elements) bool.
    """
    reported = probability > threshold
    unreported = np.where(reported, 0.0, probability)
    added = np.zeros_like(reported)
    for element in np.flatnonzero(coincident.any(axis=1)):
        rival = unreported[:, coincident[element]].max(axis=1)
        mine = unreported[:, element]
        added[:, element] = ~reported[:, element] & (mine >= rival) & (mine + rival > threshold)
    return reported | added
