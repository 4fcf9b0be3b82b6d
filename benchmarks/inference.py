"""Benchmark batched inference of the edge recogniser (``Recogniser.predict``).

In one run, on spectra from the forward model sharing one 2048-channel acquisition axis (as in a
spectrum image, which is what ``map`` feeds it):

1. CPU, with ``torch.set_num_threads(THREADS)`` (2 by default, this machine's cores), for several
   batch sizes: spectra per second of the whole ``predict`` (rebinning onto the model grid,
   masking, normalisation, network, calibrated probabilities and onsets), and of the network alone
   on prepared inputs, so the share of preprocessing is visible;
2. the same with PyTorch dynamic int8 quantisation of the LSTM and Linear layers, with the largest
   probability difference from float32 and whether any above-threshold decision changed (a speed
   option, reported only: the shipped path is float32);
3. a GPU section when CUDA is available, naming the device: ``predict`` with the inputs prepared on the GPU (its
   default there, :class:`~eelsbatch.model._device_inputs.DeviceInputs`) and, for comparison, on the CPU.

Prints a table and writes ``benchmarks/results/inference.json``. Goal (issue 4/5): at least
~1,500 spectra/s for ``predict`` on 2 CPU threads, so that ``map`` reaches 1,000 spectra/s end to
end on this 2-core machine.

Usage: ``python benchmarks/inference.py [--model eelsbatch/shipped/edgenet-v9] [--spectra 8192] [--threads 2] [--gpu-only]``
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from eelsbatch.model import SHIPPED_MODEL, load_recogniser
from eelsbatch.synth import generate

RESULTS = Path(__file__).parent / "results" / "inference.json"
BATCH_SIZES = (16, 64, 256, 1024, 4096)
WINDOW = (280.0, 0.5)  # energy offset (eV), dispersion (eV/ch): 280-1304 eV, a typical core-loss window
CHANNELS = 2048
GOAL_SPECTRA_PER_S = 1500.0


def _spectra(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic spectra on one shared axis (a few hundred simulated, tiled to ``n``)."""
    block = generate(min(n, 512), seed=7, channels=CHANNELS, window=WINDOW)["spectrum"]
    counts = np.resize(block, (n, CHANNELS)).astype(np.float32)
    energy = WINDOW[0] + WINDOW[1] * np.arange(CHANNELS)
    return counts, energy


def _rate(function, n: int, repeats: int) -> float:
    """Best spectra per second of ``repeats`` calls after one warm-up call."""
    function()
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return n / best


def _measure(recogniser, counts: np.ndarray, energy: np.ndarray, repeats: int, on_gpu: bool = False) -> list[dict]:
    inputs = recogniser.inputs(counts, energy)
    rows = []
    for batch_size in BATCH_SIZES:
        predict = _rate(lambda: recogniser.predict(counts, energy, batch_size=batch_size), len(counts), repeats)
        network = _rate(lambda: recogniser.predict_inputs(inputs, batch_size=batch_size), len(counts), repeats)
        rows.append({"batch_size": batch_size, "predict_spectra_per_s": predict, "network_spectra_per_s": network,
                     "preprocessing_share": 1.0 - predict / network})
        if on_gpu:  # predict's default there prepares the inputs on the GPU; the CPU's preparation for comparison
            rows[-1]["predict_inputs_prepared_on_cpu_spectra_per_s"] = _rate(
                lambda: recogniser.predict(counts, energy, batch_size=batch_size, prepare_on_device=False), len(counts), repeats)
    return rows


def _quantised(recogniser):
    """A copy with dynamic int8 LSTM and Linear layers (weights int8, activations quantised on the fly)."""
    clone = copy.copy(recogniser)
    clone.network = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(recogniser.network).eval(), {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8
    )
    return clone


def _print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'batch':>7} {'predict (spectra/s)':>20} {'network only (spectra/s)':>25} {'preprocessing share':>20}")
    for row in rows:
        print(f"{row['batch_size']:>7} {row['predict_spectra_per_s']:>20.0f} {row['network_spectra_per_s']:>25.0f} "
              f"{row['preprocessing_share']:>20.1%}")


def _cpu_sections(recogniser, counts: np.ndarray, energy: np.ndarray, arguments: argparse.Namespace, results: dict) -> None:
    """CPU float32 and dynamic int8 rows, how far int8 moves the decisions, and the best float32 rate, into ``results``."""
    results["cpu_float32"] = _measure(recogniser, counts, energy, arguments.repeats)
    _print_table(f"CPU float32, {arguments.threads} threads, {arguments.spectra} spectra x {CHANNELS} channels", results["cpu_float32"])

    quantised = _quantised(recogniser)
    results["cpu_dynamic_int8"] = _measure(quantised, counts, energy, arguments.repeats)
    reference = recogniser.predict(counts, energy, batch_size=1024)["probability"]
    approximate = quantised.predict(counts, energy, batch_size=1024)["probability"]
    results["int8_max_probability_difference"] = float(np.abs(reference - approximate).max())
    results["int8_changed_decisions"] = int(((reference > recogniser.threshold) != (approximate > recogniser.threshold)).sum())
    _print_table("CPU dynamic int8 (LSTM + Linear)", results["cpu_dynamic_int8"])
    print(f"int8 vs float32: max probability difference {results['int8_max_probability_difference']:.4f}, "
          f"{results['int8_changed_decisions']} of {reference.size} decisions changed")

    best = max(row["predict_spectra_per_s"] for row in results["cpu_float32"])
    results["best_cpu_predict_spectra_per_s"] = best
    results["meets_goal"] = best >= GOAL_SPECTRA_PER_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--spectra", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU sections (a timing on a GPU machine)")
    arguments = parser.parse_args()

    torch.set_num_threads(arguments.threads)
    recogniser = load_recogniser(arguments.model)
    counts, energy = _spectra(arguments.spectra)
    results: dict = {
        "model": recogniser.name, "model_sha256": recogniser.sha256, "spectra": arguments.spectra,
        "channels": CHANNELS, "window_eV": [float(energy[0]), float(energy[-1])], "cpu_threads": arguments.threads,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "goal_predict_spectra_per_s": GOAL_SPECTRA_PER_S,
    }

    if not arguments.gpu_only:
        _cpu_sections(recogniser, counts, energy, arguments, results)

    if torch.cuda.is_available():
        results["gpu_device"] = torch.cuda.get_device_name(0)
        recogniser.to("cuda")
        results["gpu_float32"] = _measure(recogniser, counts, energy, arguments.repeats, on_gpu=True)
        _print_table(f"GPU {results['gpu_device']} float32, inputs prepared on the GPU", results["gpu_float32"])
        print("predict with the inputs prepared on the CPU instead: " + ", ".join(
            f"batch {row['batch_size']} {row['predict_inputs_prepared_on_cpu_spectra_per_s']:.0f}" for row in results["gpu_float32"]))
    else:
        results["gpu_device"] = None
        print("\nno CUDA device: GPU section skipped")

    if not arguments.gpu_only:
        best = results["best_cpu_predict_spectra_per_s"]
        print(f"\nbest CPU predict: {best:.0f} spectra/s (goal {GOAL_SPECTRA_PER_S:.0f}): {'met' if results['meets_goal'] else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
