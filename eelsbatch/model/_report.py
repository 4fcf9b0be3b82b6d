"""The printed summary of a recogniser's evaluation: its headline figures as a few lines of text.

The metrics are :func:`eelsbatch.model._evaluate.evaluate_store`'s; this module only words them.
"""

from __future__ import annotations

from eelsbatch.edges import ROSE_SNR
from eelsbatch.model._evaluate import CLEAR_Z, LOW_ONSET_EV


def summarise(metrics: dict) -> str:
    """The headline figures of :func:`~eelsbatch.model._evaluate.evaluate_store`'s ``metrics`` as a few printable lines."""
    worst = sorted(metrics["per_element"].items(), key=lambda item: item[1]["f1"])[:5]
    lines = [
        f"spectra: {metrics['spectra']}",
        f"exact element-set accuracy (every detectable element, nothing outside the specimen): {metrics['exact_match']:.4f}"
        f" (threshold alone: {metrics['exact_match_threshold_only']:.4f})",
        f"exact element-set accuracy, strict (exactly the detectable elements): {metrics['exact_match_strict']:.4f}",
        f"exact element-set accuracy (every element with an edge in the window): {metrics['exact_match_present']:.4f}",
        f"micro F1: {metrics['micro_f1']:.4f}; expected calibration error: {metrics['expected_calibration_error']:.4f}",
        f"onset error: median {metrics['onset_error_eV']['median']} eV, 90th percentile {metrics['onset_error_eV']['p90']} eV",
        f"spectra with no element in the window given a false element: {metrics['no_element_false_positive_rate']}",
        "by readout: " + "; ".join(f"{r['sectors']} sector(s) {r['accuracy']:.4f} of {r['count']}, "
                                   f"{r['no_element_with_a_false_element']} of {r['no_element_spectra']} edge-free with a false element"
                                   for r in metrics["accuracy_vs_readout_sectors"]),
        "weakest F1: " + ", ".join(f"{e} {s['f1']:.2f}" for e, s in worst),
        "errors by kind: " + ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in metrics["errors_by_kind"].items()),
        "recall by edge families in the window: " + ", ".join(f"{r['families']} {r['recall']:.3f} of {r['count']}"
                                                             for r in metrics["recall_vs_families_in_window"]),
        _twins_line(metrics["twins"]),
        *_observer_lines(metrics),
        "most confused (missed -> reported): " + ", ".join(f"{c['missed']}->{c['reported_instead']} ({c['count']})" for c in metrics["most_confused"][:6]),
    ]
    return "\n".join(lines)


def _twins_line(twins: dict) -> str:
    line = (f"spectra with a twin (an absent element whose edges in the window the forward model could draw alike, within "
            f"{twins['margin_eV']:g} eV): {twins['spectra']}")
    if not twins["spectra"]:
        return line
    elsewhere = "" if twins["exact_match_elsewhere"] is None else f", {twins['exact_match_elsewhere']:.4f} elsewhere"
    return (f"{line}, exact {twins['exact_match_on_them']:.4f} on them{elsewhere}; "
            f"right but for twins, guessed evenly among them: {twins['even_guess_ceiling']:.4f}")


def _observer_lines(metrics: dict) -> list[str]:
    tables = metrics["recall_vs_observer_z"]
    if not tables:
        return []
    below, above = f"onset_below_{LOW_ONSET_EV:g}_eV", f"onset_from_{LOW_ONSET_EV:g}_eV"

    def cells(rows: list[dict]) -> str:
        def recall(part: dict) -> str:
            return "-" if part["recall"] is None else f"{part['recall']:.3f}"
        return ", ".join(f"{r['low']:g}-{r['high']:g} {recall(r[below])} / {recall(r[above])}" for r in rows)

    return [f"recall by ideal-observer z, onset below / from {LOW_ONSET_EV:g} eV: {cells(tables['by_observer_z'])}",
            f"recall from ideal-observer z {CLEAR_Z:g} by dispersion (eV/ch), onset below / from {LOW_ONSET_EV:g} eV: "
            f"{cells(tables[f'by_dispersion_from_z_{CLEAR_Z:g}'])}",
            f"exact element-set accuracy with elements below ideal-observer z {ROSE_SNR:g} unscored: "
            f"{metrics['exact_match_observer_detectable']:.4f}"]
