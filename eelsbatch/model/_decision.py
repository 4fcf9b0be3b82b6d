"""Which elements to report, from calibrated probabilities: the threshold and the coincident-edge rules."""

from __future__ import annotations

import numpy as np

SECOND_EXPLANATION_PROBABILITY = 0.75  # chosen on the validation store of seed 3 (tried 0.6 to 0.99), not on the test


def report(probability: np.ndarray, threshold: float, coincident: np.ndarray) -> np.ndarray:
    """Elements reported: above ``threshold``, with two rules for elements whose edges coincide.

    Two elements with coincident edges are two exclusive explanations of one edge. The network may split the
    edge between them: where neither is above the threshold but the two together are, the likelier one is
    reported (only if it is the likeliest of its unreported coincident elements). Or it may give both: where
    both are reported, the less likely one stays only if its probability is at least
    ``SECOND_EXPLANATION_PROBABILITY`` (both elements in the specimen), else the edge is the likelier one's.

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
    paired = np.flatnonzero(coincident.any(axis=1))
    for element in paired:
        rival = unreported[:, coincident[element]].max(axis=1)
        mine = unreported[:, element]
        added[:, element] = ~reported[:, element] & (mine >= rival) & (mine + rival > threshold)
    reported |= added
    explained = np.zeros_like(reported)
    for element in paired:
        likelier = np.where(reported[:, coincident[element]], probability[:, coincident[element]], 0.0).max(axis=1)
        explained[:, element] = (likelier > probability[:, element]) & (probability[:, element] < SECOND_EXPLANATION_PROBABILITY)
    return reported & ~explained
