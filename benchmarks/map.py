"""Benchmark ``eelsbatch map`` end to end: spectrum-image store in, maps store out, on local Dask workers.

In one run, on 2048-channel float32 spectrum images written as ``convert`` writes them (default chunks
of ~32 MB = 64 x 64 pixels, Blosc zstd):

1. end-to-end spectra per second of ``run_map`` on the LocalCluster that ``map`` builds, of 1 worker
   and of 2 workers (1 thread each, torch threads = 1), on the large image, and their ratio; the workers are warmed by a
   map of the small image first (torch import and model load), so the rate is that of the steady state;
   the cold small-image run is reported too;
2. peak resident memory of a worker (the kernel's ``ru_maxrss`` of the worker process, and the
   highest RSS polled every 50 ms) after mapping the 64 x 64 image and then the 256 x 256 image in the
   same worker process: bounded by the chunk size, the two should be about the same;
3. the finish step after the last block (tallies, the elements found, any classic maps measured again with moved
   windows, the pass over ``edge_intensity``), in seconds and as a share of the run;
4. the share of the workers' task time spent reading the input chunk, in inference (rebinning,
   network and the classic edge-intensity fits) and writing the output regions; and, measured apart
   on one chunk in this process, the share of the edge-intensity fits within "inference".

Inputs: 512 spectra from the forward model (mixed compositions, 250-1274 eV at 0.5 eV/ch) drawn at
random per pixel with fresh Poisson noise, so the stores compress like real data.

Prints a table and writes ``benchmarks/results/map.json``. Goal (issue 5): at least 1,000 spectra/s
end to end on this 2-core machine for 2048 channels. The machine is shared: the load average before
and after is recorded.

Usage: ``python benchmarks/map.py [--model eelsbatch/shipped/edgenet-v9] [--large 256] [--small 64]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import psutil
import xarray as xr
from distributed import Client

from eelsbatch.cluster import ClusterOptions, open_client
from eelsbatch.io import open_store, write_store
from eelsbatch.mapping import edge_intensity, integration_onset, run_map
from eelsbatch.model import SHIPPED_MODEL, load_recogniser
from eelsbatch.synth import generate

RESULTS = Path(__file__).parent / "results" / "map.json"
WINDOW = (250.0, 0.5)
CHANNELS = 2048
GOAL_SPECTRA_PER_S = 1000.0
FINISH_SHARE_GOAL = 0.05  # issue 24: the finish step under 5 % of a 256 x 256 x 2048 map


def _pixels(block: np.ndarray, base: np.ndarray, block_id: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(list(block_id))
    chosen = base[rng.integers(0, len(base), block.shape[:2])]
    return rng.poisson(chosen).astype(np.float32)


def write_image(path: Path, size: int, base: np.ndarray) -> Path:
    """A ``size`` x ``size`` x 2048 spectrum-image store with the default (~32 MB) chunks."""
    template = da.zeros((size, size, CHANNELS), dtype=np.float32, chunks=(64, 64, CHANNELS))
    data = da.map_blocks(_pixels, template, base, dtype=np.float32)
    energy = WINDOW[0] + WINDOW[1] * np.arange(CHANNELS)
    counts = xr.DataArray(
        data, dims=("y", "x", "energy"),
        coords={"y": ("y", np.arange(size) * 0.5, {"units": "nm"}), "x": ("x", np.arange(size) * 0.5, {"units": "nm"}),
                "energy": ("energy", energy, {"units": "eV"})},
        attrs={"source_file": f"benchmark {size}x{size}", "dispersion_eV": WINDOW[1], "original_metadata": "{}"},
    )
    return write_store(counts, path)


class _RssPoller(threading.Thread):
    """Highest resident set size of the given processes, polled every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for process in self.processes:
                try:
                    self.peak = max(self.peak, process.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)


def _worker_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _mapped(store: Path, output: Path, model: Path, client: Client) -> dict:
    poller = _RssPoller(list(client.run(os.getpid).values()))
    poller.start()
    started = time.perf_counter()
    summary = run_map(store, output, model, client, overwrite=True, progress=False)
    wall = time.perf_counter() - started
    poller.halt.set()
    poller.join()
    timings = dict(summary.timings)
    finish = timings.pop("finish")
    task_time = sum(timings.values())
    return {
        "spectra": summary.spectra, "chunks": summary.chunks_total, "wall_s": wall,
        "spectra_per_s": summary.spectra / wall, "finish_s": finish, "finish_share_of_wall": finish / wall,
        "shares": {key: value / task_time for key, value in timings.items()},
        "worker_peak_rss_MB": max(client.run(_worker_peak_rss).values()) / 1e6,
        "worker_peak_rss_polled_MB": poller.peak / 1e6,
        "elements_found": summary.elements_found,
    }


def _run_on(workers: int, small: Path, large: Path, model: Path, scratch: Path) -> dict:
    with open_client(ClusterOptions(n_workers=workers, threads_per_worker=1)) as client:  # the cluster `map` builds
        cold_small = _mapped(small, scratch / "small-maps.zarr", model, client)
        warm_large = _mapped(large, scratch / "large-maps.zarr", model, client)
    return {"workers": workers, "small_cold": cold_small, "large_warm": warm_large}


def _intensity_share(store: Path, model: Path) -> dict:
    """Time of the edge-intensity fits vs the recogniser on one input chunk, in this process (1 thread)."""
    import torch

    torch.set_num_threads(1)
    counts = open_store(store)["counts"]
    chunk = counts[:64, :64].values.reshape(-1, CHANNELS)
    energy = counts["energy"].values
    recogniser = load_recogniser(model)
    onsets = [o for e in recogniser.elements if (o := integration_onset(e, energy)) is not None]
    recogniser.predict(chunk[:256], energy)
    started = time.perf_counter()
    recogniser.predict(chunk, energy)
    predict = time.perf_counter() - started
    started = time.perf_counter()
    for onset in onsets:
        edge_intensity(chunk, energy, onset)
    fits = time.perf_counter() - started
    return {"spectra": len(chunk), "predict_s": predict, "edge_intensity_s": fits, "elements_with_window": len(onsets),
            "edge_intensity_share_of_inference": fits / (fits + predict)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--large", type=int, default=256, help="side of the large image (pixels)")
    parser.add_argument("--small", type=int, default=64, help="side of the small image (pixels)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="eelsbatch-map-bench-", dir=arguments.scratch))
    load_before = os.getloadavg()
    try:
        base = np.clip(generate(512, seed=3, channels=CHANNELS, window=WINDOW)["spectrum"], 0, None)
        small = write_image(scratch / "small.zarr", arguments.small, base)
        large = write_image(scratch / "large.zarr", arguments.large, base)
        runs = [_run_on(workers, small, large, arguments.model, scratch) for workers in (1, 2)]
        intensity = _intensity_share(large, arguments.model)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    one, two = runs[0]["large_warm"], runs[1]["large_warm"]
    results = {
        "model": str(arguments.model), "channels": CHANNELS, "small": arguments.small, "large": arguments.large,
        "chunk_pixels": 64 * 64, "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "device": "cpu (no CUDA device)", "runs": runs, "edge_intensity_apart": intensity,
        "spectra_per_s_1_worker": one["spectra_per_s"], "spectra_per_s_2_workers": two["spectra_per_s"],
        "ratio_2_to_1": two["spectra_per_s"] / one["spectra_per_s"],
        "goal_spectra_per_s": GOAL_SPECTRA_PER_S, "goal_met": two["spectra_per_s"] >= GOAL_SPECTRA_PER_S,
        "finish_s_2_workers": two["finish_s"], "finish_share_goal": FINISH_SHARE_GOAL,
        "finish_goal_met": two["finish_share_of_wall"] < FINISH_SHARE_GOAL,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }

    print(f"\nmap end to end, {CHANNELS} channels, chunks of 64 x 64 pixels, model {arguments.model.name}")
    print(f"{'workers':>7} {'image':>9} {'spectra':>8} {'wall s':>8} {'spectra/s':>10} {'read':>6} {'infer':>6} {'write':>6} "
          f"{'peak RSS MB':>12} {'polled MB':>10}")
    for run in runs:
        for label, row in (("small_cold", run["small_cold"]), ("large_warm", run["large_warm"])):
            size = arguments.small if label == "small_cold" else arguments.large
            shares = row["shares"]
            print(f"{run['workers']:>7} {f'{size}x{size}':>9} {row['spectra']:>8} {row['wall_s']:>8.1f} {row['spectra_per_s']:>10.0f} "
                  f"{shares['read']:>6.1%} {shares['inference']:>6.1%} {shares['write']:>6.1%} "
                  f"{row['worker_peak_rss_MB']:>12.0f} {row['worker_peak_rss_polled_MB']:>10.0f}")
    print(f"ratio 2 workers / 1 worker: {results['ratio_2_to_1']:.2f}")
    print(f"finish step (after the last block) of the {arguments.large}x{arguments.large} map on 2 workers: "
          f"{two['finish_s']:.2f} s, {two['finish_share_of_wall']:.1%} of the run (goal under {FINISH_SHARE_GOAL:.0%})")
    print(f"edge-intensity fits: {intensity['edge_intensity_share_of_inference']:.1%} of 'infer' "
          f"({intensity['elements_with_window']} element windows, {intensity['spectra']} spectra)")
    print(f"goal {GOAL_SPECTRA_PER_S:.0f} spectra/s on 2 workers: {'met' if results['goal_met'] else 'NOT met'}; "
          f"load average before {load_before[0]:.2f}, after {results['loadavg_after'][0]:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
