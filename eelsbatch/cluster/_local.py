"""The client: a local Dask cluster, an existing scheduler, or SLURM jobs (:mod:`eelsbatch.cluster._slurm`, imported
only when asked for), with the quiet close that every cluster eelsbatch starts gets."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator

import dask
from distributed import Client, LocalCluster, WorkerPlugin

from eelsbatch.cluster._options import ALLOCATOR_ENVIRONMENT, ClusterOptions
from eelsbatch.errors import ClusterError, EelsbatchError

def local_core_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0))


def _local_cluster(options: ClusterOptions) -> LocalCluster:
    threads = max(1, options.threads_per_worker)
    n_workers = options.n_workers or max(1, local_core_count() // threads)
    # glibc and the thread pools read their settings when a process starts: they go in before the
    # nanny spawns the worker, not into its environment afterwards
    pre_spawn = {
        **dask.config.get("distributed.nanny.pre-spawn-environ"),
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **ALLOCATOR_ENVIRONMENT,
    }
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}), _workers_ignore_ctrl_c():
        return LocalCluster(
            n_workers=n_workers, threads_per_worker=threads, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
        )


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored: a terminal's Ctrl-C reaches the whole process group, and it is
    this process's to handle (closing the cluster, one line to the user); a worker that took it would print its own
    traceback. A Python started with SIGINT ignored keeps it ignored, so the workers inherit this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _slurm_cluster(options: ClusterOptions):
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise ClusterError(None, "SLURM is not installed here (no sbatch/squeue on PATH)")
    from eelsbatch.cluster._slurm import slurm_cluster  # dask-jobqueue: only for SLURM

    return slurm_cluster(options)


@contextlib.contextmanager
def open_client(options: ClusterOptions | None = None) -> Iterator[Client]:
    """Yield a Dask client for ``options`` and close what was started on exit.

    Parameters
    ----------
    options
        Where to run; default: a local cluster sized to this machine.

    Raises
    ------
    EelsbatchError
        If the scheduler cannot be reached or SLURM is not available.
    """
    options = options or ClusterOptions()
    if options.scheduler:
        try:
            client = Client(options.scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(options.scheduler, f"cannot reach the Dask scheduler ({error.__class__.__name__})") from None
        with client:
            yield client
        return
    cluster = _slurm_cluster(options) if options.cluster == "slurm" else _local_cluster(options)
    with cluster, Client(cluster) as client:
        client.register_plugin(QuietClose(), name="eelsbatch-quiet-close")
        try:
            yield client
        except BaseException:
            _quiet_teardown()  # an interrupted run: its tasks' cancellation is no news to the user
            raise


class _ClosingNoise(logging.Filter):
    """Drops the warning a worker logs for each task that its own closing cancelled (Dask: 'This should exclusively
    happen in Worker.close()'): a run cut short already says so in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith("ended with CancelledError")


class QuietClose(WorkerPlugin):
    """On every worker of the clusters eelsbatch starts: closing after an interrupted run prints nothing."""

    def setup(self, worker: object) -> None:
        logger = logging.getLogger("distributed.worker.state_machine")
        if not any(isinstance(f, _ClosingNoise) for f in logger.filters):
            logger.addFilter(_ClosingNoise())


def _quiet_teardown() -> None:
    """Silence Dask's loggers while a cluster whose run was cut short closes (cancelled tasks, closing comms)."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
