"""Benchmark ``eelsbatch synth``: labelled spectra per second on 1 and 2 local Dask workers.

In one run, for 2048-channel spectra drawn by the default forward model (compositions, windows
and noise drawn per spectrum):

1. spectra per second of :func:`eelsbatch.synth.generate` in this process (one core, no Dask,
   no storage): the forward model's own speed;
2. end-to-end spectra per second of :func:`eelsbatch.synth.write_training_set` (generation on the
   workers, Zarr writes, completeness marker) on a LocalCluster of 1 worker and of 2 workers
   (1 thread each, separate processes), and their ratio (goal: near 2 on this 2-core machine).
   Each cluster first writes a small warm-up store (imports, edge-table load), so the rates are
   those of the steady state. The two stores are checked to be identical (same seed).
   ``task_busy_fraction`` is the workers' task compute time over workers x wall time: near 1 means
   every worker was kept busy; ``cores_used`` is the workers' CPU time over wall time: on a loaded
   shared machine a busy worker gets less than a core, and the ratio then measures the machine's
   spare CPU rather than the scaling of the code.

Prints a table and writes ``benchmarks/results/synth.json``. The machine is shared: the load
average before and after is recorded.

Usage: ``python benchmarks/synth.py [--n 8000] [--chunk-size 500] [--channels 2048]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
from distributed import Client, LocalCluster, get_task_stream

from eelsbatch.synth import generate, write_training_set

RESULTS = Path(__file__).parent / "results" / "synth.json"
SEED = 2022


def _on_cluster(workers: int, n: int, chunk_size: int, channels: int, scratch: Path) -> dict:
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        write_training_set(scratch / f"warm{workers}.zarr", 2 * workers, SEED + 1, client, channels, chunk_size=1)
        cpu_before = sum(client.run(time.process_time).values())
        with get_task_stream(client) as stream:
            started = time.perf_counter()
            store = write_training_set(scratch / f"w{workers}.zarr", n, SEED, client, channels, chunk_size)
            wall = time.perf_counter() - started
        cpu = sum(client.run(time.process_time).values()) - cpu_before
    busy = sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"] if s["action"] == "compute")
    return {"workers": workers, "spectra": n, "chunks": -(-n // chunk_size), "wall_s": wall,
            "spectra_per_s": n / wall, "task_busy_fraction": busy / (workers * wall),
            "worker_cpu_s": cpu, "cores_used": cpu / wall, "store": str(store)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000, help="spectra per timed store")
    parser.add_argument("--chunk-size", type=int, default=500, help="spectra per task and Zarr chunk")
    parser.add_argument("--channels", type=int, default=2048)
    args = parser.parse_args()

    load_before = os.getloadavg()
    generate(5, SEED + 2, channels=args.channels)  # warm caches (edge table, detector patterns)
    in_process_n = min(args.n, 1000)
    started = time.perf_counter()
    generate(in_process_n, SEED, channels=args.channels)
    in_process = in_process_n / (time.perf_counter() - started)

    scratch = Path(tempfile.mkdtemp(prefix="eelsbatch-bench-synth-"))
    try:
        runs = [_on_cluster(workers, args.n, args.chunk_size, args.channels, scratch) for workers in (1, 2)]
        one, two = (xr.open_zarr(run["store"], consolidated=False)["spectrum"] for run in runs)
        identical = bool(np.array_equal(one.values, two.values))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for run in runs:
        run.pop("store")
    ratio = runs[1]["spectra_per_s"] / runs[0]["spectra_per_s"]
    result = {
        "channels": args.channels, "chunk_size": args.chunk_size,
        "in_process_spectra_per_s": in_process, "runs": runs, "ratio_2_over_1": ratio,
        "identical_across_workers": identical, "goal_ratio": 2.0,
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    print(f"forward model in process (1 core, no Dask): {in_process:8.1f} spectra/s")
    print(f"{'workers':>7} {'spectra':>8} {'chunks':>6} {'wall s':>8} {'spectra/s':>10} {'busy':>5} {'cores':>5}")
    for run in runs:
        print(f"{run['workers']:>7} {run['spectra']:>8} {run['chunks']:>6} {run['wall_s']:>8.2f}"
              f" {run['spectra_per_s']:>10.1f} {run['task_busy_fraction']:>5.2f} {run['cores_used']:>5.2f}")
    print(f"ratio 2/1 workers: {ratio:.2f} (goal ~2); identical stores: {identical}")
    print(f"load average before {load_before[0]:.2f}, after {result['load_average_after'][0]:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
