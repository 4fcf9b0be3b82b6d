"""Print the measured sections of a model card (Markdown) from ``eelsbatch evaluate``'s JSON.

Usage: ``python scripts/model_card_tables.py models/NAME/evaluation.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _binned(rows: list[dict], label: str) -> str:
    lines = [f"| {label} | spectra | exact accuracy |", "|---|---|---|"]
    for row in rows:
        high = "inf" if row["high"] is None or row["high"] == float("inf") else f"{row['high']:g}"
        lines.append(f"| {row['low']:g}-{high} | {row['count']} | {row['accuracy']:.3f} |")
    return "\n".join(lines)


def model_card_tables(evaluation: dict) -> str:
    """The headline table, accuracy against SNR and dose, per-element scores and confusions."""
    onset = evaluation["onset_error_eV"]
    headline = "\n".join([
        "| metric | value |", "|---|---|",
        f"| exact element-set accuracy: every detectable element, nothing outside the specimen (headline) | **{evaluation['exact_match']:.4f}** |",
        f"| exact element-set accuracy, strict: exactly the detectable elements | {evaluation['exact_match_strict']:.4f} |",
        f"| exact element-set accuracy, every element with an edge in the window | {evaluation['exact_match_present']:.4f} |",
        f"| micro F1 | {evaluation['micro_f1']:.4f} |",
        f"| expected calibration error | {evaluation['expected_calibration_error']:.4f} |",
        f"| onset error (median / 90th percentile) | {onset['median']:.1f} / {onset['p90']:.1f} eV |",
        f"| spectra with no element in the window given a false element | {evaluation['no_element_false_positive_rate']:.4f} |",
    ])
    confused = ", ".join(f"{row['missed']} -> {row['reported_instead']} ({row['count']})" for row in evaluation["most_confused"])
    elements = ["| element | precision | recall | F1 | support |", "|---|---|---|---|---|"] + [
        f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
        for name, s in evaluation["per_element"].items()
    ]
    return "\n\n".join([
        f"{evaluation['spectra']} spectra, threshold {evaluation['threshold']}:", headline,
        f"Most confused (missed -> reported instead): {confused}.",
        "Exact accuracy against the weakest edge's SNR:", _binned(evaluation["accuracy_vs_weakest_edge_snr"], "SNR"),
        "Exact accuracy against dose (counts/channel at the window start):", _binned(evaluation["accuracy_vs_dose"], "dose"),
        "Per-element precision, recall and F1 (support: detectable occurrences in the test set):", "\n".join(elements),
    ])


if __name__ == "__main__":
    print(model_card_tables(json.loads(Path(sys.argv[1]).read_text())))
