"""Where the work runs: a local Dask cluster, an existing scheduler, or SLURM through dask-jobqueue.

Every command that computes (``synth``, ``map``) takes the same :class:`ClusterOptions` and
runs its per-chunk functions on the client that :func:`open_client` yields, so the
executor can be swapped without touching the science.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import dask
import yaml
from distributed import Client, LocalCluster, WorkerPlugin

from eelsbatch.errors import EelsbatchError

ClusterKind = Literal["local", "slurm"]

# glibc allocator settings of local workers. Dask's default MALLOC_TRIM_THRESHOLD_=65536 also pins
# the mmap threshold at 128 kB, so every torch activation block is mmapped and faulted in afresh:
# inference ran 2.3x slower in a worker than in a plain process. Freed memory up to 256 MB stays in
# the heap (a bound, not a leak) and only blocks above 16 MB are mmapped.
ALLOCATOR_ENVIRONMENT = {"MALLOC_TRIM_THRESHOLD_": str(256 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(16 * 2**20)}


@dataclasses.dataclass
class ClusterOptions:
    """How to get Dask workers.

    Parameters
    ----------
    cluster
        ``"local"`` (a LocalCluster on this machine) or ``"slurm"`` (dask-jobqueue SLURMCluster).
    scheduler
        Address of an existing scheduler (``tcp://host:8786``); overrides ``cluster``.
    n_workers
        Local worker processes (default: one per core).
    threads_per_worker
        Threads per local worker; torch uses as many intra-op threads (default 1).
    queue, account, walltime, cores, memory, jobs, gpus_per_job
        SLURM partition, account, job walltime (``HH:MM:SS``), cores and memory per job, number
        of jobs, and GPUs per job (mapped to ``--gres=gpu:N`` and one worker per GPU).
    job_extra
        Further ``#SBATCH`` directives.
    interface
        Network interface of the SLURM scheduler and workers (``ib0``, ``eth0``); default:
        loopback where the partition is this host alone, else dask-jobqueue's choice.
    log_directory
        Folder for the SLURM jobs' logs (default: a new temporary folder; on a multi-node
        cluster give one on a shared file system).
    start_timeout
        Seconds to wait for all SLURM workers to connect before cancelling the jobs.
    """

    cluster: ClusterKind = "local"
    scheduler: str | None = None
    n_workers: int | None = None
    threads_per_worker: int = 1
    queue: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    cores: int = 1
    memory: str = "4GB"
    jobs: int = 1
    gpus_per_job: int = 0
    job_extra: list[str] = dataclasses.field(default_factory=list)
    interface: str | None = None
    log_directory: str | None = None
    start_timeout: float = 600.0

    @classmethod
    def from_file(cls, path: Path, **overrides: object) -> "ClusterOptions":
        """Read options from a YAML file whose keys are this class's fields.

        Parameters
        ----------
        path
            YAML file, for example ``workflows/slurm-gpu.yaml``.
        **overrides
            Values given on the command line; ``None`` means "not given" and keeps the file's value.
        """
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise EelsbatchError(path, f"cannot read cluster configuration ({error.__class__.__name__})") from None
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EelsbatchError(path, f"unknown cluster option(s): {', '.join(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


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
        raise EelsbatchError(None, "--cluster slurm: SLURM is not installed here (no sbatch/squeue on PATH)")
    from eelsbatch.slurm import slurm_cluster

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
            raise EelsbatchError(options.scheduler, f"cannot reach the Dask scheduler ({error.__class__.__name__})") from None
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
