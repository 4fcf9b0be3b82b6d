"""The recogniser on the real development set: sixteen recorded EELS files whose own sources name their elements.

For every file of ``../shared/data/real/`` (``MANIFEST.tsv`` gives the truth, column ``elements``):

1. The whole-file result, as ``eelsbatch evaluate`` gives it: on the sum of all spectra of a spectrum image or
   line scan, through :func:`eelsbatch.model._evaluate.elements_in_sum` (the same function, so this measures what
   the user gets): the elements found with their probabilities and look-alikes, the true elements missed with
   theirs, the dispersion and window, and whether the recogniser warns of the acquisition
   (:meth:`Recogniser.acquisition_warning`).
2. Where the file holds more than one spectrum: per pixel (or row), the share of spectra reporting each element;
   for the files in ``COLUMN_PROFILES`` the share per column of the named elements.
3. Totals over the file-level element sets: exact sets (n of N), micro precision, recall and F1, both strict
   (every manifest element a truth) and with the uncertain elements of ``OPTIONAL`` unscored.

This is a development set: figures on it are development figures, not a held-out test.

Prints a table and writes ``benchmarks/results/real.json``.

Usage: ``python benchmarks/real.py [--model eelsbatch/shipped/edgenet-v9] [--data ../shared/data/real] [--json OUT]
[--threshold P]``
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eelsbatch.io import open_spectrum_image
from eelsbatch.mapping._alternatives import found_alternatives
from eelsbatch.model import SHIPPED_MODEL, Recogniser, load_recogniser
from eelsbatch.model._evaluate import elements_in_sum
from eelsbatch.readout import SECTOR_STARTS_ATTR, chosen_sector_starts

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
DEFAULT_JSON = Path(__file__).parent / "results" / "real.json"
MANIFEST = "MANIFEST.tsv"
UNREPORTED_SHOWN = 3  # the likeliest elements not reported, kept per file

# Uncertain truths, unscored in the "optional unscored" figures (neither a miss if not found nor a false element if
# found); the strict figures count them as truths. Each entry comes from the file's MANIFEST.tsv notes:
# - dev17: "O K and Mn L3 (9 eV before window end) not above noise; Li content (state of charge) not stated -
#   Li uncertain".
# dev01 has no entry: its notes say "DM session tag 'Specimen: NiMnGa' looks stale (no Mn L / Ni L edges seen in
# the sum)", so Mn and Ni are not truths at all (the manifest's elements leave them out) and count as false
# elements if found.
OPTIONAL: dict[str, frozenset[str]] = {
    "dev17_jia_SiNMC_Si_SI.dm3": frozenset({"Li", "O", "Mn"}),
}

# Files whose per-pixel content the source describes along the columns (the last navigation axis), with the
# elements to profile there. dev18's notes: "per pixel: O K only in right-hand columns, left material unknown".
COLUMN_PROFILES: dict[str, tuple[str, ...]] = {
    "dev18_taillon_OK_interface_SI.hspy": ("O",),
}


@dataclass(frozen=True)
class Case:
    """One file's element sets: the certain ``truth``, the ``found`` ones and the uncertain ``optional`` ones
    (truths in the strict figures, unscored in the others)."""

    truth: frozenset[str]
    found: frozenset[str]
    optional: frozenset[str] = frozenset()


def _ratio(numerator: int, denominator: int) -> float:
    # An empty denominator scores 0, as scikit-learn's zero_division=0: no claim made is no credit earned.
    return numerator / denominator if denominator else 0.0


def score(cases: Iterable[Case]) -> dict[str, dict]:
    """Exact sets and micro precision, recall and F1 over file-level element sets.

    Parameters
    ----------
    cases
        One :class:`Case` per file.

    Returns
    -------
    dict
        ``strict`` (optional elements counted as truths: a miss if not found) and ``optional_unscored`` (optional
        elements dropped from both the truth and the found set), each with ``files``, ``exact``, ``tp``, ``fp``,
        ``fn``, ``precision``, ``recall`` and ``f1``.
    """
    cases = list(cases)
    result = {}
    for name, unscored in (("strict", False), ("optional_unscored", True)):
        exact = tp = fp = fn = 0
        for case in cases:
            truth, found = case.truth | case.optional, case.found
            if unscored:
                truth, found = truth - case.optional, found - case.optional
            exact += truth == found
            tp, fp, fn = tp + len(found & truth), fp + len(found - truth), fn + len(truth - found)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        result[name] = {"files": len(cases), "exact": exact, "tp": tp, "fp": fp, "fn": fn,
                        "precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall)}
    return result


def read_manifest(data: Path) -> dict[str, frozenset[str]]:
    """File name -> its elements, from the data folder's ``MANIFEST.tsv``."""
    with (data / MANIFEST).open(newline="") as handle:
        return {row["file"]: frozenset(e.strip() for e in row["elements"].split(",") if e.strip())
                for row in csv.DictReader(handle, delimiter="\t")}


def run(recogniser: Recogniser, path: Path, truth: frozenset[str]) -> dict:
    """The recogniser on one file: the whole-file result on the sum, and per pixel where there are several spectra.

    Parameters
    ----------
    recogniser
        The model, with the threshold to decide at (``recogniser.threshold``, as ``eelsbatch evaluate`` sets it).
    path
        An instrument file of the development set; its entries in ``OPTIONAL`` and ``COLUMN_PROFILES`` apply.
    truth
        The manifest's elements for it.

    Returns
    -------
    dict
        ``file``, ``spectra``, ``navigation`` (dims and sizes), ``window_eV``, ``dispersion_eV``,
        ``acquisition_warning`` (text or None), ``truth``, ``optional``, ``found`` (element -> probability,
        strongest first), ``alternatives`` (found element -> look-alikes in the window), ``missed`` (true element
        -> probability; None for an element the model does not know), ``onset_eV`` (the network's onset for each true or found element, None where it sees
        none), ``strongest_unreported`` (the ``UNREPORTED_SHOWN`` likeliest elements not reported, with
        their probabilities), ``exact_strict``, ``exact_optional_unscored``; with several spectra also ``per_pixel`` (element ->
        share of spectra reporting it, for every element reported somewhere or true) and ``per_column`` (element
        -> share per column, for ``COLUMN_PROFILES``).
    """
    optional = OPTIONAL.get(path.name, frozenset())
    counts = open_spectrum_image(path)
    energy = counts["energy"].values
    # The layout `evaluate` would mark: none is recorded in instrument files, but a store would carry one.
    starts = chosen_sector_starts(None, counts.attrs.get(SECTOR_STARTS_ATTR), energy.size)
    spectra = np.asarray(counts.values, dtype=np.float64).reshape(-1, energy.size)
    found = elements_in_sum(recogniser, spectra, energy, starts)
    # The probabilities of the elements not reported (the missed truths) and the onsets: one more pass on the
    # same sum that elements_in_sum forms.
    whole = recogniser.predict(spectra.sum(axis=0, keepdims=True), energy, sector_starts=starts)
    probability, onset = whole["probability"][0], whole["onset_energy"][0]
    index = {element: i for i, element in enumerate(recogniser.elements)}
    found_set = frozenset(e for e, _ in found)
    case = Case(truth - optional, found_set, optional)
    scores = score([case])
    result = {
        "file": path.name,
        "spectra": len(spectra),
        "navigation": {dim: int(size) for dim, size in counts.sizes.items() if dim != "energy"},
        "window_eV": [float(energy[0]), float(energy[-1])],
        "dispersion_eV": float(counts.attrs.get("dispersion_eV", np.median(np.diff(energy)))),
        "acquisition_warning": recogniser.acquisition_warning(energy),
        "truth": sorted(truth),
        "optional": sorted(optional),
        "found": {e: round(p, 4) for e, p in found},
        "alternatives": found_alternatives([e for e, _ in found], energy, recogniser.elements),
        # An element outside the model's list (dev17's Li) can never be found: a miss with no probability.
        "missed": {e: round(float(probability[index[e]]), 4) if e in index else None for e in sorted(truth - found_set)},
        # The nearest misses, for reading a failure: which element the network nearly gave instead.
        "strongest_unreported": {recogniser.elements[i]: round(float(probability[i]), 4)
                                 for i in [i for i in np.argsort(-probability) if recogniser.elements[i] not in found_set][:UNREPORTED_SHOWN]},
        "onset_eV": {e: None if np.isnan(onset[index[e]]) else round(float(onset[index[e]]), 1)
                     for e in sorted(truth | found_set) if e in index},
        "exact_strict": scores["strict"]["exact"] == 1,
        "exact_optional_unscored": scores["optional_unscored"]["exact"] == 1,
    }
    if len(spectra) > 1:
        reported = recogniser.decide(recogniser.predict(spectra, energy, sector_starts=starts)["probability"])
        shown = sorted({recogniser.elements[i] for i in np.flatnonzero(reported.any(axis=0))} | (truth & index.keys()))
        result["per_pixel"] = {e: round(float(reported[:, index[e]].mean()), 4) for e in shown}
        columns = counts.sizes[counts.dims[-2]]  # the last navigation axis; the spectra are flattened in C order
        result["per_column"] = {e: [round(float(s), 3) for s in reported[:, index[e]].reshape(-1, columns).mean(axis=0)]
                                for e in COLUMN_PROFILES.get(path.name, ())}
    return result


def _cases(files: list[dict]) -> list[Case]:
    return [Case(frozenset(f["truth"]) - frozenset(f["optional"]), frozenset(f["found"]), frozenset(f["optional"])) for f in files]


def table(files: list[dict], totals: dict[str, dict]) -> str:
    """Per-file rows, per-pixel shares and the totals, as printable text."""
    rows = [("file", "eV/ch", "window (eV)", "warn", "spectra", "truth", "found (p; or look-alikes)", "missed (p)", "exact")]
    for f in files:
        truth = ",".join(e + ("?" if e in f["optional"] else "") for e in f["truth"])
        found = ", ".join(f"{e} {p:.2f}" + (f" (or {','.join(f['alternatives'][e])})" if e in f["alternatives"] else "")
                          for e, p in f["found"].items()) or "none"
        missed = ", ".join(f"{e} {'not modelled' if p is None else f'{p:.2f}'}" for e, p in f["missed"].items()) or "-"
        exact = "yes" if f["exact_strict"] else "unscored-yes" if f["exact_optional_unscored"] else "no"
        rows.append((f["file"].split("_")[0], f"{f['dispersion_eV']:.3g}", f"{f['window_eV'][0]:.1f}-{f['window_eV'][1]:.1f}",
                     "yes" if f["acquisition_warning"] else "-", str(f["spectra"]), truth, found, missed, exact))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append("(? : optional, unscored in the second totals row; warn: acquisition warning)")
    lines.append("")
    for f in files:
        if "per_pixel" in f:
            shares = ", ".join(f"{e} {s:.2f}" for e, s in sorted(f["per_pixel"].items(), key=lambda item: -item[1]))
            lines.append(f"{f['file'].split('_')[0]} per spectrum ({f['spectra']}, {f['navigation']}): {shares}")
            for e, columns in f["per_column"].items():
                lines.append(f"{f['file'].split('_')[0]} share of {e} per column (left to right): " + " ".join(f"{s:.2f}" for s in columns))
    lines.append("")
    for name, t in totals.items():
        lines.append(f"{name.replace('_', ' ')}: exact {t['exact']} of {t['files']}; micro precision {t['precision']:.3f}, "
                     f"recall {t['recall']:.3f}, F1 {t['f1']:.3f} (tp {t['tp']}, fp {t['fp']}, fn {t['fn']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="The development set's folder (MANIFEST.tsv and files).")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="Where to write the results.")
    parser.add_argument("--threshold", type=float, default=None, help="Presence threshold (default: the model's).")
    args = parser.parse_args()
    if not (args.data / MANIFEST).is_file():
        sys.exit(f"real.py: no development set at {args.data} (expected {MANIFEST} there)")
    manifest = read_manifest(args.data)
    # A table entry for a file the manifest no longer lists would silently stop applying: say so instead.
    if unknown := sorted((OPTIONAL.keys() | COLUMN_PROFILES.keys()) - manifest.keys()):
        sys.exit(f"real.py: {', '.join(unknown)} in OPTIONAL or COLUMN_PROFILES but not in {args.data / MANIFEST}")
    recogniser = load_recogniser(args.model)
    if args.threshold is not None:
        recogniser.threshold = args.threshold
    files = [run(recogniser, args.data / name, truth) for name, truth in manifest.items()]
    totals = score(_cases(files))
    print(f"model {recogniser.name} ({args.model}), threshold {recogniser.threshold:g}, {len(files)} files in {args.data}")
    print(table(files, totals))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": recogniser.name, "model_path": str(args.model), "sha256": recogniser.sha256,
                                     "threshold": recogniser.threshold, "data": str(args.data),
                                     "optional": {name: sorted(e) for name, e in OPTIONAL.items()},
                                     "files": files, "totals": totals}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
