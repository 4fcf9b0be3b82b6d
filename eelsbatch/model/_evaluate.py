"""Evaluate a recogniser on a labelled synthetic store, or report what it finds in instrument spectra.

The metrics are computed here; their printed summary is :func:`eelsbatch.model._report.summarise`, their figure
:func:`eelsbatch.plot.plot_evaluation`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eelsbatch.edges import MAJOR_FAMILIES, ROSE_SNR, TWIN_MARGIN_EV, Edge, edges_of, even_guess_ceiling, twin_counts
from eelsbatch.model._data import TrainingStore
from eelsbatch.model._decision import SECOND_EXPLANATION_PROBABILITY
from eelsbatch.model._metrics import correct_sets, expected_calibration_error, exact_match, per_element_scores, scored_entries
from eelsbatch.model._network import READOUT_FAMILIES, WINDOW_MARGIN_EV
from eelsbatch.model._priors import with_priors
from eelsbatch.model._recogniser import Recogniser

LOW_ONSET_EV = 230.0  # below the C K edge: L2,3 of Mg..Cl, M4,5 of Y..Mo, N4,5 of the lanthanides
OBSERVER_Z_BINS = np.array([0, 3, 5, 10, 20, 50, np.inf])
CLEAR_Z = 10.0  # an edge at least this far above the ideal observer's noise is clearly detectable
DISPERSION_BINS = np.array([0, 0.1, 0.2, 0.4, 0.8, np.inf])  # eV per channel


def _binned_accuracy(values: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> list[dict]:
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (values >= low) & (values < high)
        if inside.any():
            rows.append({"low": float(low), "high": float(high), "count": int(inside.sum()), "accuracy": float(correct[inside].mean())})
    return rows


def predict_store(recogniser: Recogniser, data: str | Path) -> dict[str, np.ndarray]:
    """The recogniser's outputs on every spectrum of a labelled synthetic store, with the labels.

    Returns
    -------
    dict
        ``probability`` and ``onset_energy`` (:meth:`Recogniser.predict`); the labels ``detectable`` and
        ``present`` (bool), ``onset_truth`` (eV), ``snr`` (spectra, elements); ``dose`` and ``readout_sectors`` (spectra,).
    """
    store = TrainingStore(data, recogniser.elements, recogniser.grid, recogniser.network.downsampling,
                          recogniser.reads_sector_marks)
    keys = ("probability", "onset_energy", "detectable", "present", "onset_truth", "snr", "dose", "readout_sectors")
    columns: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for batch in store.batches(store.chunk_starts()):
        result = recogniser.predict_inputs(batch.inputs)
        for key, values in zip(keys, (result["probability"], result["onset_energy"], batch.detectable > 0.5, batch.present,
                                      batch.onset_energy, batch.snr, batch.dose, batch.readout_sectors)):
            columns[key].append(values)
    return {key: np.concatenate(values) for key, values in columns.items()}


def evaluate_store(recogniser: Recogniser, data: str | Path, threshold: float | None = None,
                   predictions: dict[str, np.ndarray] | None = None) -> dict:
    """Metrics of ``recogniser`` on a synthetic store with labels.

    Parameters
    ----------
    recogniser, data
        The model and the labelled store.
    threshold
        Presence threshold (default: the model's).
    predictions
        :func:`predict_store`'s result where already computed.

    Returns
    -------
    dict
        Exact element-set accuracy (the headline: every detectable element reported and nothing
        outside the specimen; a present element too faint to be detectable may be reported or not),
        with the recogniser's decision (:meth:`Recogniser.decide`) and with the threshold alone,
        also strictly against ``detectable`` and against ``present`` (every element with an edge in the window),
        per-element precision/recall/F1, onset error in eV, accuracy against jump ratio, dose and readout
        sectors, recall by the element's edge families in the window, errors by kind, the spectra with a twin
        (:func:`~eelsbatch.edges.twin_counts`: no observer can tell which element) and the accuracy on and
        off them, the most confused element pairs, and the expected calibration error. Where the store holds the
        ideal-observer significance of each edge (:func:`~eelsbatch.synth._forward.observer_z`), also the recall
        against it and, for edges from ``CLEAR_Z``, against dispersion, each below and above ``LOW_ONSET_EV``, and
        the headline with the elements no observer could find at the Rose limit left unscored.
    """
    threshold = recogniser.threshold if threshold is None else threshold
    predictions = predict_store(recogniser, data) if predictions is None else predictions
    probability, onset, detectable, present, onset_truth, snr, dose, sectors = (predictions[key] for key in (
        "probability", "onset_energy", "detectable", "present", "onset_truth", "snr", "dose", "readout_sectors"))
    store = TrainingStore(data, recogniser.elements, recogniser.grid, recogniser.network.downsampling,
                          recogniser.reads_sector_marks)
    predicted = recogniser.decide(probability, threshold)
    scores = per_element_scores(predicted, detectable, present)
    correct = correct_sets(predicted, detectable, present)
    windows = _windows(store)
    twins = twin_counts(detectable, present, windows, recogniser.elements)
    with_twin = twins.any(axis=1)
    edge_free = ~present.any(axis=1)
    false_positive, false_negative = predicted & ~present, detectable & ~predicted
    hit = predicted & detectable & np.isfinite(onset_truth) & np.isfinite(onset)
    onset_error = np.abs(onset[hit] - onset_truth[hit])
    weakest = np.where(present, snr, np.inf).min(axis=1)
    observer = _stored_per_element(store, "observer_z")
    confusions: dict[tuple[str, str], int] = {}
    for row in np.flatnonzero(~correct):
        missed = [recogniser.elements[i] for i in np.flatnonzero(false_negative[row])]
        extra = [recogniser.elements[i] for i in np.flatnonzero(false_positive[row])]
        for a in missed or ["(none)"]:
            for b in extra or ["(none)"]:
                confusions[(a, b)] = confusions.get((a, b), 0) + 1
    top = sorted(confusions.items(), key=lambda item: -item[1])[:15]
    return {
        "spectra": int(len(probability)),
        "threshold": threshold,
        "exact_match": float(correct.mean()),
        "exact_match_threshold_only": float(correct_sets(probability > threshold, detectable, present).mean()),
        "decision": f"above the threshold, or the likelier of two elements with onsets within {WINDOW_MARGIN_EV:g} eV "
                    "whose probabilities together are above it; of two such elements both above it, the less likely "
                    f"only from {SECOND_EXPLANATION_PROBABILITY:g}",
        "exact_match_strict": exact_match(predicted, detectable),
        "exact_match_present": exact_match(predicted, present),
        "no_element_spectra": int(edge_free.sum()),
        "no_element_false_positive_rate": float(predicted[edge_free].any(axis=1).mean()) if edge_free.any() else None,
        "micro_f1": float(2 * (predicted & detectable).sum() / max(2 * (predicted & detectable).sum() + false_positive.sum() + false_negative.sum(), 1)),
        "per_element": {
            element: {key: float(scores[key][i]) for key in ("precision", "recall", "f1")} | {"support": int(scores["support"][i])}
            for i, element in enumerate(recogniser.elements)
        },
        "onset_error_eV": {"median": float(np.median(onset_error)) if onset_error.size else None,
                           "p90": float(np.percentile(onset_error, 90)) if onset_error.size else None, "count": int(onset_error.size)},
        "expected_calibration_error": expected_calibration_error(probability, detectable, scored=scored_entries(detectable, present)),
        "accuracy_vs_weakest_edge_snr": _binned_accuracy(weakest, correct, np.array([0, 2, 5, 10, 20, 50, 100, np.inf])),
        "accuracy_vs_dose": _binned_accuracy(dose, correct, np.array([0, 1e3, 3e3, 1e4, 3e4, 1e5, np.inf])),
        "accuracy_vs_readout_sectors": [
            {"sectors": int(n), "count": int((sectors == n).sum()), "accuracy": float(correct[sectors == n].mean()),
             "no_element_spectra": int((edge_free & (sectors == n)).sum()),
             "no_element_with_a_false_element": int(predicted[edge_free & (sectors == n)].any(axis=1).sum())}
            for n in np.unique(sectors)
        ],
        "recall_vs_jump_ratio": _recall_vs_jump(store, predicted, detectable),
        "recall_vs_families_in_window": _recall_vs_families(recogniser.elements, predicted, detectable, windows),
        "errors_by_kind": error_kinds(recogniser, predicted, detectable, present, windows),
        "recall_vs_observer_z": {} if observer is None else _recall_vs_observer_z(
            recogniser.elements, predicted, detectable, observer, windows, store.group["dispersion"][:]),
        "exact_match_observer_detectable": None if observer is None else float(
            correct_sets(predicted, detectable & (observer >= ROSE_SNR), present).mean()),
        "twins": {"margin_eV": TWIN_MARGIN_EV, "spectra": int(with_twin.sum()),
                  "exact_match_on_them": float(correct[with_twin].mean()) if with_twin.any() else None,
                  "exact_match_elsewhere": float(correct[~with_twin].mean()) if not with_twin.all() else None,
                  "even_guess_ceiling": even_guess_ceiling(twins)},
        "most_confused": [{"missed": a, "reported_instead": b, "count": n} for (a, b), n in top],
    }


def _windows(store: TrainingStore) -> np.ndarray:
    """(spectra, 2) first and last channel energy of every spectrum in the store."""
    group = store.group
    offset, dispersion = group["energy_offset"][:], group["dispersion"][:]
    return np.stack([offset, offset + dispersion * (group["spectrum"].shape[1] - 1)], axis=1)


def _major_edges_in_window(element: str, low: float, high: float) -> list[Edge]:
    """The element's edges of the major families (K, L2,3, M4,5, N4,5) that start from ``low`` to ``high`` eV."""
    return [edge for edge in edges_of(element) if edge.family in MAJOR_FAMILIES and low <= edge.onset_eV <= high]


def _window_onsets(element: str, low: float, high: float) -> list[float]:
    return [edge.onset_eV for edge in edges_of(element) if edge.family in READOUT_FAMILIES and low <= edge.onset_eV <= high]


def _has_lone_edge(onsets: list[float], others: list[float]) -> bool:
    """Whether one of ``onsets`` lies farther than the read-out margin from every one of ``others``."""
    return any(all(abs(onset - other) > WINDOW_MARGIN_EV for other in others) for onset in onsets)


def error_kinds(recogniser: Recogniser, predicted: np.ndarray, detectable: np.ndarray, present: np.ndarray,
                windows: np.ndarray) -> dict[str, int]:
    """Count the wrongly answered spectra by kind of error.

    A *coincident substitution* is a missed element reported as another absent element whose major edge starts
    within the read-out margin of one of its own (:attr:`Recogniser.coincident`); it is *indistinguishable in the
    window* when no edge of either element in the acquired window (any read-out family: K, L2,3, M4,5, N4,5, L1,
    M2,3) lies farther than that margin from every edge of the other, so that only edge shapes could tell them apart.

    Parameters
    ----------
    recogniser
        The model (elements and coincident pairs).
    predicted, detectable, present
        (spectra, elements) bool: the decision and the labels.
    windows
        (spectra, 2) first and last acquired energy in eV.

    Returns
    -------
    dict
        Counts of ``missed`` (only detectable elements missed), ``extra`` (only absent elements reported),
        ``substitution_told_apart_in_window``, ``substitution_indistinguishable_in_window`` and ``missed_and_extra``
        (neither coincident).
    """
    counts = dict.fromkeys(("missed", "extra", "substitution_told_apart_in_window", "substitution_indistinguishable_in_window",
                            "missed_and_extra"), 0)
    coincident, elements = recogniser.coincident, recogniser.elements
    for row in np.flatnonzero(~correct_sets(predicted, detectable, present)):
        missed, extra = np.flatnonzero(detectable[row] & ~predicted[row]), np.flatnonzero(predicted[row] & ~present[row])
        pairs = [(a, b) for a in missed for b in extra if coincident[a, b]]
        if pairs:
            a, b = (_window_onsets(elements[i], *windows[row]) for i in pairs[0])
            told = _has_lone_edge(a, b) or _has_lone_edge(b, a)
            counts["substitution_told_apart_in_window" if told else "substitution_indistinguishable_in_window"] += 1
        else:
            counts["missed_and_extra" if missed.size and extra.size else "missed" if missed.size else "extra"] += 1
    return counts


def _recall_vs_families(elements: list[str], predicted: np.ndarray, detectable: np.ndarray, windows: np.ndarray) -> list[dict]:
    """Recall of the detectable elements grouped by which of their major edge families start in the window."""
    groups: dict[str, list[bool]] = {}
    for row, column in zip(*np.nonzero(detectable)):
        low, high = windows[row]
        families = sorted({edge.family for edge in _major_edges_in_window(elements[column], low, high)}, key=MAJOR_FAMILIES.index)
        groups.setdefault("+".join(families) or "(shifted in)", []).append(bool(predicted[row, column]))
    return [{"families": name, "count": len(found), "recall": float(np.mean(found))}
            for name, found in sorted(groups.items(), key=lambda item: -len(item[1]))]


def _stored_per_element(store: TrainingStore, name: str) -> np.ndarray | None:
    """(spectra, elements) array ``name`` of the store in the recogniser's element order, read chunk by chunk; None if absent."""
    if name not in store.group:
        return None
    return np.concatenate([store.group[name][s : s + store.chunk][:, store.columns] for s in store.chunk_starts()])


def _recall_vs_observer_z(elements: list[str], predicted: np.ndarray, detectable: np.ndarray, observer: np.ndarray,
                          windows: np.ndarray, dispersion: np.ndarray) -> dict[str, list[dict]]:
    """Recall of the detectable elements by their ideal-observer z, and of the clearly detectable ones (z from
    ``CLEAR_Z``) by dispersion; each overall and by the element's lowest major onset in the window."""
    rows, columns = np.nonzero(detectable)
    lowest = np.array([min((edge.onset_eV for edge in _major_edges_in_window(elements[column], *windows[row])), default=np.inf)
                       for row, column in zip(rows, columns)])
    found, z = predicted[rows, columns], observer[rows, columns]
    clear = z >= CLEAR_Z
    return {"by_observer_z": _recall_table(found, z, OBSERVER_Z_BINS, lowest),
            f"by_dispersion_from_z_{CLEAR_Z:g}": _recall_table(found[clear], dispersion[rows][clear], DISPERSION_BINS, lowest[clear])}


def _recall_table(found: np.ndarray, values: np.ndarray, bins: np.ndarray, lowest_onset: np.ndarray) -> list[dict]:
    """Recall of ``found`` in bins of ``values``: overall, with the lowest onset below and from ``LOW_ONSET_EV``."""
    table = []
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (values >= low) & (values < high)
        entry = {"low": float(low), "high": float(high), "count": int(inside.sum()),
                 "recall": float(found[inside].mean()) if inside.any() else None}
        for name, band in (("onset_below", lowest_onset < LOW_ONSET_EV), ("onset_from", lowest_onset >= LOW_ONSET_EV)):
            chosen = inside & band
            entry[f"{name}_{LOW_ONSET_EV:g}_eV"] = {"count": int(chosen.sum()), "recall": float(found[chosen].mean()) if chosen.any() else None}
        table.append(entry)
    return table


def _recall_vs_jump(store: TrainingStore, predicted: np.ndarray, detectable: np.ndarray) -> list[dict]:
    jump = _stored_per_element(store, "jump_ratio")
    present = jump > 0
    rows = []
    for low, high in zip([1.0, 1.05, 1.1, 1.3, 2.0, 4.0], [1.05, 1.1, 1.3, 2.0, 4.0, np.inf]):
        inside = present & (jump >= low) & (jump < high)
        if inside.any():
            rows.append({"low": low, "high": float(high), "count": int(inside.sum()),
                         "recall_of_present": float(predicted[inside].mean()),
                         "share_detectable": float(detectable[inside].mean())})
    return rows


def write_evaluation(metrics: dict, folder: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation.json`` (the metrics of :func:`evaluate_store`) and ``evaluation.png``
    (:func:`eelsbatch.plot.plot_evaluation`) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "evaluation.json"
    json_path.write_text(json.dumps(metrics, indent=2))
    from eelsbatch.plot import plot_evaluation  # matplotlib: only when a figure is asked for

    return json_path, plot_evaluation(metrics, folder / "evaluation.png")


def elements_in_sum(recogniser: Recogniser, counts: np.ndarray, energy: np.ndarray,
                    sector_starts: list[int] | None = None, odds: np.ndarray | None = None) -> list[tuple[str, float]]:
    """Elements reported (:meth:`Recogniser.decide`) in the sum of the given spectra, with their probabilities, strongest first.

    ``sector_starts``: the detector's readout layout where known (:meth:`Recogniser.predict`); ``odds``: an analyst's
    priors (:func:`eelsbatch.model._priors.prior_odds`), or None.
    """
    total = np.asarray(counts, dtype=np.float64).reshape(-1, len(energy)).sum(axis=0, keepdims=True)
    probability = with_priors(recogniser.predict(total, energy, sector_starts=sector_starts)["probability"], odds)
    reported = recogniser.decide(probability)[0]
    order = np.argsort(-probability[0])
    return [(recogniser.elements[i], float(probability[0, i])) for i in order if reported[i]]
