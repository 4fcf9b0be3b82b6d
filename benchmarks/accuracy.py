"""The recogniser's accuracy as the model card states it, measured in one run (optionally beside a baseline model).

1. Held-out test: ``eelsbatch synth`` store of 10,000 spectra, seed 20261125 (never used in training or threshold
   choice; written under ``benchmarks/results/`` if absent): exact element-set accuracy (headline, threshold alone,
   strict), micro F1, calibration error, onset error, edge-free spectra given a false element, all by readout
   sectors, errors by kind, recall against each edge's ideal-observer z (``synth.observer_z``); with ``--baseline``,
   the spectra each model alone gets right (a sign test on the difference).
2. Paired readouts: the same specimens (``generate(N, 777)``) read out through one port and through 2 or 4, every
   other draw identical: exact accuracy and edge-free false elements each way.
3. A readout step where the equal-share layout does not mark one (a spectrum cropped before saving): one-port
   spectra (``generate(N, 778)``) given a gain step of up to 4 % at a random channel at least 32 channels from the
   marks, read with the default marks and with the step's own channel given (``--sector-starts``).
4. Real spectra: the noise-only DigitalMicrograph and TIA files and the Velox file's three noise-only EELS
   images (highest probability, pixels reporting an element); ``EELS_SI.dm4`` (W M4,5 and O K).
5. A structured core-shell image (``synth --spectrum-image``, 48 x 48, seed 11): IoU of ``present`` with the truth
   per element, and pixels reporting an element not there.

Prints a table and writes ``benchmarks/results/accuracy.json``.

Usage: ``python benchmarks/accuracy.py [--model eelsbatch/shipped/edgenet-v9] [--baseline OTHER] [--paired 20000]
[--instrument ../shared/data/instrument]``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import zarr

from eelsbatch.io import open_spectrum_image
from eelsbatch.model import SHIPPED_MODEL, Recogniser, load_recogniser
from eelsbatch.model._evaluate import CLEAR_Z, LOW_ONSET_EV, evaluate_store, predict_store
from eelsbatch.model._metrics import correct_sets
from eelsbatch.readout import boundary_channels
from eelsbatch.synth import DEFAULT_QUALITY, Quality, generate, spectrum_image
from eelsbatch.synth._store import PRESENT_RULE, PRESENT_RULE_ATTR

RESULTS = Path(__file__).parent / "results"
TEST_SEED, TEST_SIZE = 20261125, 10_000
PAIRED_SEED = 777
VELOX_EELS_SIGNALS = (14, 15, 16)  # the Velox file's three EELS spectrum images
STEP_CLEARANCE = 32  # channels between an off-layout step and the nearest equal-share mark
DEFAULT_INSTRUMENT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instrument"


def test_store() -> Path:
    """The held-out test store, written by ``eelsbatch synth`` on first use (again where an older one lacks a label
    or labels by another rule)."""
    path = RESULTS / f"test-{TEST_SEED}.zarr"
    group = zarr.open_group(str(path), mode="r") if path.exists() else None
    if group is None or "observer_z" not in group or group.attrs.get(PRESENT_RULE_ATTR) != PRESENT_RULE:
        RESULTS.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "eelsbatch.cli", "synth", str(path), "--n", str(TEST_SIZE),
                        "--seed", str(TEST_SEED), "--overwrite"], check=True)
    return path


def held_out_test(recogniser: Recogniser, store: Path) -> tuple[dict, np.ndarray]:
    """Headline metrics and the per-spectrum correctness."""
    predictions = predict_store(recogniser, store)
    metrics = evaluate_store(recogniser, store, predictions=predictions)
    correct = correct_sets(recogniser.decide(predictions["probability"]), predictions["detectable"], predictions["present"])
    keys = ("exact_match", "exact_match_threshold_only", "exact_match_strict", "micro_f1", "expected_calibration_error",
            "no_element_false_positive_rate", "onset_error_eV", "accuracy_vs_readout_sectors", "accuracy_vs_weakest_edge_snr",
            "errors_by_kind", "recall_vs_families_in_window", "twins", "recall_vs_observer_z", "exact_match_observer_detectable")
    return {key: metrics[key] for key in keys}, correct


def _energy(data: dict) -> np.ndarray:
    return data["energy_offset"][:, None] + data["dispersion"][:, None] * np.arange(data["spectrum"].shape[1])


def _scores(recogniser: Recogniser, probability: np.ndarray, detectable: np.ndarray, present: np.ndarray) -> dict:
    decided = recogniser.decide(probability)
    edge_free = ~present.any(axis=1)
    return {"exact_match": float(correct_sets(decided, detectable, present).mean()),
            "edge_free": int(edge_free.sum()), "edge_free_with_a_false_element": int(decided[edge_free].any(axis=1).sum())}


def paired_readouts(recogniser: Recogniser, n: int) -> dict:
    """The same specimens read out through one port and through 2 or 4."""
    result = {}
    for name, share in (("one_port", 0.0), ("two_or_four_ports", 1.0)):
        data = generate(n, PAIRED_SEED, quality=Quality(sector_probability=share))
        probability = recogniser.predict(data["spectrum"], _energy(data))["probability"]
        result[name] = _scores(recogniser, probability, data["detectable"], data["present"])
    return result


def off_layout_step(recogniser: Recogniser, n: int) -> dict:
    """One-port spectra given a gain step at a channel the equal-share layout does not mark."""
    data = generate(n, PAIRED_SEED + 1, quality=Quality(sector_probability=0.0))
    counts, energy = data["spectrum"], _energy(data)
    channels = counts.shape[1]
    rng = np.random.default_rng(8)
    marks = boundary_channels(channels)
    allowed = np.flatnonzero(np.abs(np.arange(channels)[:, None] - marks[None]).min(axis=1) >= STEP_CLEARANCE)
    allowed = allowed[(allowed >= 128) & (allowed < channels - 128)]
    step = rng.choice(allowed, len(counts))
    gain = 1 + rng.uniform(-DEFAULT_QUALITY.sector_gain, DEFAULT_QUALITY.sector_gain, len(counts))
    stepped = np.where(np.arange(channels)[None] >= step[:, None], counts * gain[:, None], counts).astype(np.float32)
    own = np.concatenate([recogniser.predict(stepped[i : i + 1], energy[i], sector_starts=[int(step[i])])["probability"]
                          for i in range(len(counts))])
    probabilities = {"no_step": recogniser.predict(counts, energy)["probability"],
                     "step_default_marks": recogniser.predict(stepped, energy)["probability"],
                     "step_its_own_mark": own}
    return {name: _scores(recogniser, p, data["detectable"], data["present"]) for name, p in probabilities.items()}


def real_spectra(recogniser: Recogniser, instrument: Path) -> dict:
    """Noise-only files (highest probability, spectra reporting an element) and EELS_SI.dm4's elements."""
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(instrument / "velox_EELS_EDS.zip") as archive:
            velox = Path(archive.extract(next(n for n in archive.namelist() if n.endswith(".emd")), folder))
        sources = [("test-EELS_spectrum.dm3", instrument / "test-EELS_spectrum.dm3", None),
                   ("16x16-spectrum_image-5x5x1024.emi", instrument / "16x16-spectrum_image-5x5x1024.emi", None)]
        sources += [(f"velox_EELS_EDS.emd signal {i}", velox, str(i)) for i in VELOX_EELS_SIGNALS]
        for name, path, signal in sources:
            counts = open_spectrum_image(path, signal=signal)
            energy = counts["energy"].values
            probability = recogniser.predict(np.asarray(counts.values).reshape(-1, energy.size), energy)["probability"]
            result[name] = {"spectra": len(probability), "highest_probability": float(probability.max()),
                            "spectra_reporting_an_element": int(recogniser.decide(probability).any(axis=1).sum())}
    counts = open_spectrum_image(instrument / "EELS_SI.dm4")
    energy = counts["energy"].values
    total = np.asarray(counts.values, dtype=np.float64).reshape(-1, energy.size).sum(axis=0, keepdims=True)
    probability = recogniser.predict(total, energy)["probability"][0]
    reported = recogniser.decide(probability[None])[0]
    result["EELS_SI.dm4 (sum)"] = {recogniser.elements[i]: round(float(probability[i]), 3) for i in np.flatnonzero(reported)}
    return result


def core_shell(recogniser: Recogniser) -> dict:
    """IoU of ``present`` with the truth per element, and the pixels reporting an element not there."""
    counts, truth = spectrum_image("core-shell", (48, 48), seed=11)
    energy = counts["energy"].values
    probability = recogniser.predict(np.asarray(counts.values).reshape(-1, energy.size), energy)["probability"]
    present = recogniser.decide(probability)
    expected = np.zeros_like(present)
    for element in truth["element"].values:
        expected[:, recogniser.elements.index(str(element))] = truth.sel(element=element).values.reshape(-1)
    iou = {}
    for index in np.flatnonzero(expected.any(axis=0)):
        both, either = (present[:, index] & expected[:, index]).sum(), (present[:, index] | expected[:, index]).sum()
        iou[recogniser.elements[index]] = round(float(both / either), 4)
    false = present & ~expected
    return {"iou": iou, "pixels_with_an_element_not_in_their_phase": int(false.any(axis=1).sum()), "pixels": len(present),
            "false_elements": {recogniser.elements[i]: int(false[:, i].sum()) for i in np.flatnonzero(false.any(axis=0))}}


def sign_test(model_correct: np.ndarray, baseline_correct: np.ndarray) -> dict:
    """Spectra only one model gets right, and the normal approximation of the sign test on them."""
    better, worse = int((model_correct & ~baseline_correct).sum()), int((~model_correct & baseline_correct).sum())
    z = (better - worse) / math.sqrt(better + worse) if better + worse else 0.0
    return {"newly_right": better, "newly_wrong": worse, "z": round(z, 2)}


def measure(model: Path, paired: int, steps: int, instrument: Path, store: Path) -> tuple[dict, np.ndarray]:
    recogniser = load_recogniser(model)
    test, correct = held_out_test(recogniser, store)
    return {"model": recogniser.name, "test": test, "paired_readouts": paired_readouts(recogniser, paired),
            "off_layout_step": off_layout_step(recogniser, steps), "real": real_spectra(recogniser, instrument),
            "core_shell": core_shell(recogniser)}, correct


def table(results: dict[str, dict]) -> str:
    """The headline rows, one column per model."""
    def rows(r: dict) -> dict[str, str]:
        t, p, s = r["test"], r["paired_readouts"], r["off_layout_step"]
        sectors = "; ".join(f"{x['sectors']}: {x['accuracy']:.3f} ({x['no_element_with_a_false_element']}/{x['no_element_spectra']})"
                            for x in t["accuracy_vs_readout_sectors"])
        real = r["real"]
        below, above = f"onset_below_{LOW_ONSET_EV:g}_eV", f"onset_from_{LOW_ONSET_EV:g}_eV"
        noise = [v for k, v in real.items() if not k.startswith("EELS_SI")]
        return {
            "test exact (threshold alone; strict)": f"{t['exact_match']:.4f} ({t['exact_match_threshold_only']:.4f}; {t['exact_match_strict']:.4f})",
            "test micro F1 / ECE": f"{t['micro_f1']:.4f} / {t['expected_calibration_error']:.4f}",
            "test edge-free with a false element": f"{t['no_element_false_positive_rate']:.4f}",
            "test by sectors: exact (edge-free false)": sectors,
            "test errors: missed / extra / both / substitutions (told apart; not)": "{missed} / {extra} / {missed_and_extra} / "
            "{substitution_told_apart_in_window}; {substitution_indistinguishable_in_window}".format(**t["errors_by_kind"]),
            "test twin spectra: count, exact on / off them, even-guess ceiling": "{spectra}, {exact_match_on_them:.3f} / "
            "{exact_match_elsewhere:.4f}, {even_guess_ceiling:.4f}".format(**t["twins"]),
            "test recall by families in the window": ", ".join(f"{x['families']} {x['recall']:.3f}" for x in t["recall_vs_families_in_window"][:6]),
            f"test recall by ideal-observer z, onset below / from {LOW_ONSET_EV:g} eV": ", ".join(
                f"{x['low']:g}-{x['high']:g} {x[below]['recall']:.2f} / {x[above]['recall']:.2f}" for x in t["recall_vs_observer_z"]["by_observer_z"]),
            f"test recall from z {CLEAR_Z:g} by dispersion (eV/ch), onset below / from {LOW_ONSET_EV:g} eV": ", ".join(
                f"{x['low']:g}-{x['high']:g} {x[below]['recall']:.2f} / {x[above]['recall']:.2f}"
                for x in t["recall_vs_observer_z"][f"by_dispersion_from_z_{CLEAR_Z:g}"]),
            "test exact, elements below ideal-observer z 5 unscored": f"{t['exact_match_observer_detectable']:.4f}",
            "paired one port / 2-4 ports: exact": f"{p['one_port']['exact_match']:.4f} / {p['two_or_four_ports']['exact_match']:.4f}",
            "paired edge-free false (one / 2-4)": f"{p['one_port']['edge_free_with_a_false_element']} / {p['two_or_four_ports']['edge_free_with_a_false_element']} of {p['one_port']['edge_free']}",
            "off-layout step: none / default / own mark": " / ".join(f"{s[k]['exact_match']:.4f} ({s[k]['edge_free_with_a_false_element']})" for k in ("no_step", "step_default_marks", "step_its_own_mark")),
            "noise-only: highest p, spectra reporting": f"{max(v['highest_probability'] for v in noise):.3f}, {sum(v['spectra_reporting_an_element'] for v in noise)} of {sum(v['spectra'] for v in noise)}",
            "EELS_SI.dm4 elements": ", ".join(f"{e} {p:.2f}" for e, p in real["EELS_SI.dm4 (sum)"].items()) or "none",
            "core-shell IoU": ", ".join(f"{e} {v:.3f}" for e, v in r["core_shell"]["iou"].items()),
            "core-shell pixels with an element not in their phase": f"{r['core_shell']['pixels_with_an_element_not_in_their_phase']} {r['core_shell']['false_elements']}",
        }
    columns = {name: rows(r) for name, r in results.items()}
    names = list(columns)
    width = max(len(k) for k in next(iter(columns.values())))
    lines = [f"{'':{width}} | " + " | ".join(names)]
    for key in next(iter(columns.values())):
        lines.append(f"{key:{width}} | " + " | ".join(columns[n][key] for n in names))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--baseline", type=Path, default=None, help="A second model measured on the same spectra.")
    parser.add_argument("--paired", type=int, default=20_000, help="Specimens of the paired-readout comparison.")
    parser.add_argument("--steps", type=int, default=5_000, help="One-port spectra given an off-layout step.")
    parser.add_argument("--instrument", type=Path, default=DEFAULT_INSTRUMENT)
    args = parser.parse_args()
    store = test_store()
    results, correct = {}, {}
    for model in [args.model] + ([args.baseline] if args.baseline else []):
        result, correct[str(model)] = measure(model, args.paired, args.steps, args.instrument, store)
        results[str(model)] = result
    report = {"test_store": {"path": str(store), "seed": TEST_SEED, "spectra": TEST_SIZE}, "models": results}
    if args.baseline:
        report["model_against_baseline"] = sign_test(correct[str(args.model)], correct[str(args.baseline)])
    print(table(results))
    if args.baseline:
        print("spectra only the model / only the baseline gets right:", report["model_against_baseline"])
    (RESULTS / "accuracy.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'accuracy.json'}")


if __name__ == "__main__":
    main()
