"""Benchmark ``eelsbatch convert`` against a plain h5py read of the same .hspy file.

Writes a 256 x 256 x 2048 float32 spectrum image (512 MB) as .hspy with RosettaSciIO's HSPY writer
(HyperSpy's defaults: gzip + shuffle, HyperSpy's ~1 MB chunks holding whole spectra), generated
chunk by chunk with dask so the generator never holds the whole array. Then, in one run:

1. reads the file's bytes once, so both measurements below start from a warm page cache;
2. plain read: opens the dataset with h5py and reads it slab by slab (chunk-aligned rows), summing
   every value, in this process;
3. conversion: runs the real CLI (``python -m eelsbatch.cli convert IN OUT.zarr``) in a child process
   and polls, with psutil, the kernel's peak resident size (``VmHWM``, so no short peak between two
   polls is missed) of the child and of any children it starts. ``ru_maxrss`` of RUSAGE_CHILDREN is
   not used: on Linux it inherits this (larger) parent's high-water mark through vfork + exec.
   CPU seconds (user + system) of both are reported too: on a shared machine they vary less than
   wall-clock time.

Steps 2 and 3 alternate ``--repeat`` times (default 3); the table shows the fastest of each (the
least disturbed by other work on a shared machine) and the largest peak memory; the JSON keeps every
time. Prints a table and writes ``benchmarks/results/convert.json``. Goals (issue 2): conversion time
within 2x of the plain read, peak resident memory of the conversion under 1 GB.

Usage: ``python benchmarks/convert.py [--repeat N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import psutil
import rsciio
import rsciio.hspy

SHAPE = (256, 256, 2048)
DTYPE = np.dtype("float32")
HSPY_CHUNKS = (11, 11, 2048)  # what HyperSpy chooses for this shape (rsciio get_signal_chunks, ~1 MB)
GOAL_RATIO = 2.0
GOAL_PEAK_BYTES = 2**30
RESULTS = Path(__file__).parent / "results" / "convert.json"
MB = 2**20  # MiB, so the 256 x 256 x 2048 float32 image is the 512 MB


def _spectra_block(block_id: tuple[int, ...] = (), block_info: dict | None = None) -> np.ndarray:
    """Poisson counts on a power-law background with one edge; seeded by the block's position."""
    shape = block_info[None]["chunk-shape"]
    rng = np.random.default_rng(list(block_id))
    energy = 250.0 + 0.5 * np.arange(shape[-1], dtype=np.float32)
    background = 5e9 * energy**-3.0
    edge = np.where(energy > 532.0, 0.2 * background[np.searchsorted(energy, 532.0)] * (532.0 / energy) ** 2, 0.0)
    scale = rng.uniform(0.5, 1.5, size=shape[:-1] + (1,))
    return rng.poisson(scale * (background + edge)).astype(DTYPE)


def write_hspy(path: Path) -> None:
    """Write the benchmark spectrum image with RosettaSciIO's HSPY writer, generated lazily."""
    data = da.map_blocks(
        _spectra_block,
        dtype=DTYPE,
        chunks=da.core.normalize_chunks((32, 256, -1), SHAPE),
        meta=np.empty((0, 0, 0), DTYPE),
    )
    axes = [
        {"name": "y", "units": "nm", "size": SHAPE[0], "offset": 0.0, "scale": 1.0, "navigate": True},
        {"name": "x", "units": "nm", "size": SHAPE[1], "offset": 0.0, "scale": 1.0, "navigate": True},
        {"name": "Energy loss", "units": "eV", "size": SHAPE[2], "offset": 250.0, "scale": 0.5, "navigate": False},
    ]
    metadata = {
        "General": {"title": "benchmark spectrum image"},
        "Signal": {"signal_type": "EELS"},
        "Acquisition_instrument": {
            "TEM": {"beam_energy": 200.0, "convergence_angle": 20.0, "Detector": {"EELS": {"collection_angle": 50.0}}}
        },
    }
    signal = {
        "data": data,
        "axes": axes,
        "metadata": metadata,
        "original_metadata": {},
        "attributes": {"_lazy": True},
        "tmp_parameters": {},
        "package_info": {"name": "eelsbatch-benchmark", "version": rsciio.__version__},
        "learning_results": {},
        "models": {},
    }
    rsciio.hspy.file_writer(str(path), signal, chunks=HSPY_CHUNKS, show_progressbar=False)


def _find_data(path: Path) -> str:
    with h5py.File(path, "r") as handle:
        names = [name for name in handle["Experiments"] if "data" in handle["Experiments"][name]]
    return f"Experiments/{names[0]}/data"


def warm_cache(path: Path) -> None:
    """Read every byte of ``path`` once so later reads come from the page cache."""
    with open(path, "rb") as handle:
        while handle.read(64 * 2**20):
            pass


def plain_read(path: Path) -> tuple[float, float, float]:
    """Read the dataset with h5py in chunk-aligned row slabs, summing every value.

    Returns (wall seconds, CPU seconds, sum).
    """
    start, cpu = time.perf_counter(), time.process_time()
    total = 0.0
    with h5py.File(path, "r") as handle:
        dataset = handle[_find_data(path)]
        step = dataset.chunks[0]
        for row in range(0, dataset.shape[0], step):
            total += float(dataset[row : row + step].sum(dtype=np.float64))
    return time.perf_counter() - start, time.process_time() - cpu, total


def _peak_rss(process: psutil.Process) -> int:
    """Peak resident bytes so far (``VmHWM``) of ``process`` plus its children, current RSS off Linux."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            status = Path(f"/proc/{member.pid}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            total += member.memory_info().rss
    return total


def convert(source: Path, store: Path) -> dict[str, float]:
    """Run the real ``eelsbatch convert`` in a child process; time it and poll its peak resident memory."""
    peak = 0
    cpu = _children_cpu_seconds()
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "eelsbatch.cli", "convert", str(source), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        process = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak = max(peak, _peak_rss(process))
            except psutil.Error:
                break
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    if child.returncode != 0:
        raise SystemExit(f"eelsbatch convert failed ({child.returncode}): {stderr.strip()}")
    return {"seconds": seconds, "cpu_seconds": _children_cpu_seconds() - cpu, "peak_rss": peak, "stdout": stdout.strip()}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def startup_seconds() -> float:
    """Time for a child Python to import what ``convert`` imports (included in the conversion time)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import eelsbatch.cli, eelsbatch.io, xarray, zarr, dask.array, rsciio.hspy"], check=True
    )
    return time.perf_counter() - start


def check_store(store: Path, expected_sum: float) -> None:
    """The store must hold the same values as the file (sum over all values)."""
    import xarray as xr

    counts = xr.open_zarr(str(store), consolidated=False)["counts"]
    stored = float(counts.data.sum(dtype=np.float64).compute())
    if not np.isclose(stored, expected_sum, rtol=1e-9):
        raise SystemExit(f"store sum {stored} differs from source sum {expected_sum}")


def run(folder: Path, repeat: int) -> dict:
    """Run the whole benchmark in ``folder``, measuring ``repeat`` times; return the results."""
    source, store = folder / "benchmark.hspy", folder / "benchmark.zarr"
    nbytes = int(np.prod(SHAPE)) * DTYPE.itemsize
    start = time.perf_counter()
    write_hspy(source)
    write_seconds = time.perf_counter() - start
    warm_cache(source)
    load_before = os.getloadavg()
    reads, read_cpus, startups, conversions = [], [], [], []
    for _ in range(repeat):
        shutil.rmtree(store, ignore_errors=True)  # convert refuses an existing output
        read_seconds, read_cpu, total = plain_read(source)
        reads.append(read_seconds)
        read_cpus.append(read_cpu)
        startups.append(startup_seconds())
        conversions.append(convert(source, store))
    load_after = os.getloadavg()
    check_store(store, total)
    read_seconds, startup = min(reads), min(startups)
    convert_seconds = min(c["seconds"] for c in conversions)
    peak = max(c["peak_rss"] for c in conversions)
    ratio = convert_seconds / read_seconds
    return {
        "units": "MB = 2**20 bytes, s = wall-clock seconds unless named cpu",
        "shape": list(SHAPE),
        "dtype": str(DTYPE),
        "data_MB": nbytes / MB,
        "hspy_file_MB": source.stat().st_size / MB,
        "hspy_chunks": list(HSPY_CHUNKS),
        "hspy_compression": "gzip+shuffle (HyperSpy default)",
        "store_MB": sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / MB,
        "page_cache": "warm: file read once before both measurements",
        "hspy_write_s": write_seconds,
        "repeat": repeat,
        "plain_read_s_all": reads,
        "convert_s_all": [c["seconds"] for c in conversions],
        "child_startup_s_all": startups,
        "peak_rss_MB_all": [c["peak_rss"] / MB for c in conversions],
        "plain_read_cpu_s_all": read_cpus,
        "convert_cpu_s_all": [c["cpu_seconds"] for c in conversions],
        "plain_read_cpu_s": min(read_cpus),
        "convert_cpu_s": min(c["cpu_seconds"] for c in conversions),
        "plain_read_s": read_seconds,
        "plain_read_MB_per_s": nbytes / MB / read_seconds,
        "convert_s": convert_seconds,
        "convert_MB_per_s": nbytes / MB / convert_seconds,
        "child_startup_s": startup,
        "ratio_convert_to_read": ratio,
        "ratio_without_startup": (convert_seconds - startup) / read_seconds,
        "peak_rss_MB": peak / MB,
        "goal_ratio_met": ratio <= GOAL_RATIO,
        "goal_memory_met": peak < GOAL_PEAK_BYTES,
        "cpu_count": os.cpu_count(),
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "python": platform.python_version(),
        "convert_stdout": conversions[-1]["stdout"],
    }


def print_table(results: dict) -> None:
    """Print the figures as a small table."""
    rows = [
        ("data (float32)", f"{results['data_MB']:.0f} MB, .hspy file {results['hspy_file_MB']:.0f} MB, "
                           f"store {results['store_MB']:.0f} MB"),
        ("page cache", results["page_cache"]),
        ("runs", f"{results['repeat']} alternating; best time of each shown, largest memory"),
        ("plain h5py read", f"{results['plain_read_s']:.2f} s  {results['plain_read_MB_per_s']:.0f} MB/s"),
        ("eelsbatch convert", f"{results['convert_s']:.2f} s  {results['convert_MB_per_s']:.0f} MB/s "
                              f"(incl. {results['child_startup_s']:.2f} s interpreter start + imports)"),
        ("ratio convert/read", f"{results['ratio_convert_to_read']:.2f}  (goal <= {GOAL_RATIO:g}: "
                               f"{'met' if results['goal_ratio_met'] else 'NOT met'}; "
                               f"{results['ratio_without_startup']:.2f} without start + imports)"),
        ("CPU seconds", f"read {results['plain_read_cpu_s']:.2f}, convert {results['convert_cpu_s']:.2f} "
                        f"(ratio {results['convert_cpu_s'] / results['plain_read_cpu_s']:.2f}; less sensitive to load)"),
        ("peak RSS convert", f"{results['peak_rss_MB']:.0f} MB  (VmHWM; goal < 1024 MB: "
                             f"{'met' if results['goal_memory_met'] else 'NOT met'})"),
        ("machine", f"{results['cpu_count']} CPUs, load {results['loadavg_before'][0]:.2f} before, "
                    f"{results['loadavg_after'][0]:.2f} after"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    """Parse options, run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each (default 3; best is shown)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep the files (default: a temp dir)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = run(args.keep, max(1, args.repeat))
    else:
        with tempfile.TemporaryDirectory(prefix="eelsbatch-bench-") as folder:
            results = run(Path(folder), max(1, args.repeat))
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
