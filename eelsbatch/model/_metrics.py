"""Metrics of multi-label element recognition, and probability calibration."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from eelsbatch.model._decision import report

THRESHOLD_FLOOR = 0.5  # a detection threshold is never below even odds


def correct_sets(predicted: np.ndarray, required: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(spectra,) bool: the predicted element set holds every required element and nothing extra.

    Parameters
    ----------
    predicted, required
        (spectra, elements) booleans: the reported elements and those that must be reported.
    allowed
        Elements that may be reported without counting as extra (default: ``required`` only). The
        recogniser is scored with the detectable elements required and every element in the specimen
        allowed, so a real but faint element is neither a miss nor an extra.
    """
    allowed = required if allowed is None else allowed
    return np.all(required <= predicted, axis=1) & np.all(predicted <= allowed, axis=1)


def exact_match(predicted: np.ndarray, required: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """Share of spectra whose predicted element set is right (see :func:`correct_sets`)."""
    return float(np.mean(correct_sets(predicted, required, allowed)))


def scored_entries(detectable: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(spectra, elements) bool: the entries whose truth is defined, all but the present elements too
    faint to be detectable (reporting those is neither a miss nor an extra)."""
    return detectable | ~present


def per_element_scores(predicted: np.ndarray, required: np.ndarray, allowed: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per element column (``allowed`` as in :func:`correct_sets`)."""
    allowed = required if allowed is None else allowed
    tp = np.sum(predicted & required, axis=0)
    fp = np.sum(predicted & ~allowed, axis=0)
    fn = np.sum(~predicted & required, axis=0)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / np.maximum(tp + fn, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def expected_calibration_error(probability: np.ndarray, truth: np.ndarray, scored: np.ndarray | None = None, bins: int = 10) -> float:
    """ECE over the (spectrum, element) probabilities, equal-width bins.

    ``scored`` (same shape, boolean) restricts it to the entries whose truth is defined (default: all).
    """
    scored = np.ones(np.shape(probability), bool) if scored is None else np.asarray(scored, bool)
    p, y = probability[scored], truth[scored].astype(float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            error += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return float(error)


def fit_temperature(logits: np.ndarray, truth: np.ndarray, scored: np.ndarray | None = None) -> float:
    """Temperature that minimises the binary cross-entropy of ``sigmoid(logits / T)`` (Guo et al. 2017).

    ``scored`` (same shape, boolean) restricts the fit to the entries whose truth is defined (default: all).
    """
    scored = np.ones(np.shape(logits), bool) if scored is None else np.asarray(scored, bool)
    z0, y = logits[scored], truth[scored].astype(float)

    def nll(log_t: float) -> float:
        z = z0 / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - y * z))

    return float(np.exp(minimize_scalar(nll, bounds=(-2, 2), method="bounded").x))


def false_alarm_threshold(probability: np.ndarray, truth: np.ndarray, rate: float, floor: float = THRESHOLD_FLOOR,
                          coincident: np.ndarray | None = None) -> float:
    """Lowest threshold (0.01 steps, at least ``floor``) at which at most ``rate`` of the edge-free spectra report an element.

    Parameters
    ----------
    probability
        (spectra, elements) calibrated presence probabilities.
    truth
        (spectra, elements) true element sets; rows with no element are the edge-free spectra.
    rate
        Largest tolerated share of edge-free spectra that report an element.
    floor
        Threshold returned when the edge-free spectra allow a lower one (or there are none).
    coincident
        (elements, elements) bool pairs of elements with coincident edges: what is reported is then decided as
        :meth:`~eelsbatch.model.Recogniser.decide` does (:func:`~eelsbatch.model._decision.report`), not by
        the threshold alone.
    """
    edge_free = ~np.asarray(truth, bool).any(axis=1)
    if not edge_free.any():
        return floor
    quiet = probability[edge_free]
    pairs = np.zeros((quiet.shape[1],) * 2, bool) if coincident is None else coincident
    for threshold in np.round(np.arange(floor, 1.0, 0.01), 2):
        if np.mean(report(quiet, float(threshold), pairs).any(axis=1)) <= rate:
            return float(threshold)
    return 0.99
