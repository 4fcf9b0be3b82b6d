"""Which elements to report, from calibrated probabilities: the threshold and the coincident-edge rules."""

from __future__ import annotations

import numpy as np

SECOND_EXPLANATION_PROBABILITY = 0.75  # chosen on the validation store of seed 3 (tried 0.6 to 0.99), not on the test


def report(probability: np.ndarray, threshold: float, coincident: np.ndarray,
           prior_ratio: np.ndarray | None = None) -> np.ndarray:
    """Elements reported: above ``threshold``, with two rules for elements whose edges coincide.

    Two elements with coincident edges are two exclusive explanations of one edge. The network may split the
    edge between them: where neither is above the threshold but the two together are, the likelier one is
    reported (only if it is the likeliest of its unreported coincident elements). Or it may give both: where
    both are reported, the less likely one stays only if its probability is at least
    ``SECOND_EXPLANATION_PROBABILITY`` (both elements in the specimen), else the edge is the likelier one's.

    Which explanation is the likelier weighs the network's probability by ``prior_ratio``: how much more often
    the element is in the specimens analysed than in the spectra the network was trained on. The network's
    odds between two explanations of one edge carry its training prior; times the ratio of the two elements'
    ``prior_ratio`` they are the odds for the specimens analysed (O K rather than Sb M4,5 in an oxide).

    Parameters
    ----------
    probability
        (n, elements) calibrated probabilities.
    threshold
        Presence threshold.
    coincident
        (elements, elements) bool pairs of elements with coincident edges
        (:func:`~eelsbatch.edges.coincident_elements`).
    prior_ratio
        (elements,) each element's prior in the specimens analysed over its prior in training (default: 1).

    Returns
    -------
    numpy.ndarray
        (n, elements) bool.
    """
    reported = probability > threshold
    weighed = probability if prior_ratio is None else probability * prior_ratio
    unreported = np.where(reported, 0.0, probability)
    unreported_weighed = np.where(reported, 0.0, weighed)
    added = np.zeros_like(reported)
    paired = np.flatnonzero(coincident.any(axis=1))
    for element in paired:
        rivals = coincident[element]
        together = unreported[:, element] + unreported[:, rivals].max(axis=1)
        likeliest = unreported_weighed[:, element] >= unreported_weighed[:, rivals].max(axis=1)
        added[:, element] = ~reported[:, element] & likeliest & (together > threshold)
    reported |= added
    explained = np.zeros_like(reported)
    for element in paired:
        likelier = np.where(reported[:, coincident[element]], weighed[:, coincident[element]], 0.0).max(axis=1)
        explained[:, element] = (likelier > weighed[:, element]) & (probability[:, element] < SECOND_EXPLANATION_PROBABILITY)
    return reported & ~explained
