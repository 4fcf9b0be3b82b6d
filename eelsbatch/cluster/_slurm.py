"""Dask workers as SLURM jobs, through dask-jobqueue's SLURMCluster.

:func:`slurm_cluster` checks the request against what SLURM reports (controller reachable,
partition known, walltime, cores, memory and GPUs within the partition's limits) before it
submits anything, starts the jobs, waits a bounded time for every worker to connect, and
cancels every job it submitted when it fails or closes: nothing of ours stays in ``squeue``.
While it runs, workers retire gracefully shortly before their job's walltime and every job that
has left the queue (walltime, failure, ``scancel``) is replaced by a new one.

With ``gpus_per_job=N`` each job asks for ``--gres=gpu:N`` and runs N worker processes, each
with the worker resource ``GPU=1`` and its own GPU (:func:`dask_setup`, loaded with
``--preload eelsbatch.cluster._slurm``, narrows ``CUDA_VISIBLE_DEVICES`` to that worker's device).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from eelsbatch.cluster._options import ALLOCATOR_ENVIRONMENT, ClusterOptions
from eelsbatch.errors import ClusterError, EelsbatchError

if TYPE_CHECKING:
    from dask_jobqueue import SLURMCluster

#: Shortest walltime accepted: a worker needs tens of seconds to start and must then do work.
MIN_WALLTIME_S = 120
#: Seconds a worker waits for a vanished scheduler before its job ends by itself.
DEATH_TIMEOUT_S = 60
#: Seconds between checks that every SLURM job is still queued or running (ended ones are replaced).
KEEP_JOBS_INTERVAL_S = 5
_COMMAND_TIMEOUT_S = 30
_GPUS_ENV = "EELSBATCH_GPUS_PER_JOB"


@dataclasses.dataclass(frozen=True)
class Partition:
    """What ``sinfo`` reports about one partition (largest node where nodes differ)."""

    name: str
    max_walltime_s: float | None
    cpus: int
    memory_mb: int
    gpus: int
    nodes: tuple[str, ...]


def parse_walltime(text: str) -> int:
    """Seconds in a SLURM time limit.

    Parameters
    ----------
    text
        ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM`` or ``D-HH:MM:SS``.

    Raises
    ------
    EelsbatchError
        If ``text`` is none of these.
    """
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(text).strip())
    if match is None:
        raise ClusterError(None, f"walltime {text!r} is not a SLURM time (HH:MM:SS or D-HH:MM:SS)")
    days, *parts = match.groups()
    values = [int(part) for part in parts if part is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = (values + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(values) == 3:
        hours, minutes, seconds = values
    else:  # MM or MM:SS
        hours, minutes, seconds = 0, values[0], values[1] if len(values) > 1 else 0
    return (hours * 60 + minutes) * 60 + seconds


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    """Run a SLURM client command; any failure means SLURM cannot be used from here."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, env=env)
    except FileNotFoundError:
        raise ClusterError(None, f"SLURM is not installed here (no {command[0]} on PATH)") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(None, f"SLURM does not answer ({command[0]} took over {_COMMAND_TIMEOUT_S} s)") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()] or [f"exit code {done.returncode}"]
        raise ClusterError(None, f"SLURM does not answer ({command[0]}: {lines[-1]})")
    return done.stdout


def _gpu_count(gres: str) -> int:
    counts = [int(count) for count in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres)]
    return max(counts, default=0)


def read_partition(name: str | None) -> Partition:
    """Ask ``sinfo`` about partition ``name`` (the default partition when ``None``).

    Raises
    ------
    EelsbatchError
        If SLURM does not answer or has no such partition.
    """
    rows = [line.split("|") for line in _run(["sinfo", "-h", "-o", "%P|%l|%c|%m|%G|%N"]).splitlines() if line.strip()]
    names = sorted({row[0].rstrip("*") for row in rows})
    wanted = name or next((row[0].rstrip("*") for row in rows if row[0].endswith("*")), None)
    if wanted is None:
        raise ClusterError(None, f"this SLURM has no default partition; choose one as the queue ({', '.join(names)})")
    mine = [row for row in rows if row[0].rstrip("*") == wanted]
    if not mine:
        raise ClusterError(None, f"queue {wanted}: no such SLURM partition (partitions here: {', '.join(names) or 'none'})")
    limit = mine[0][1]
    nodes = _run(["scontrol", "show", "hostnames", ",".join(row[5] for row in mine)]).split()
    return Partition(
        name=wanted,
        max_walltime_s=None if limit in ("infinite", "n/a", "UNLIMITED") else parse_walltime(limit),
        cpus=max(int(row[2].rstrip("+")) for row in mine),
        memory_mb=max(int(row[3].rstrip("+")) for row in mine),
        gpus=max(_gpu_count(row[4]) for row in mine),
        nodes=tuple(nodes),
    )


def check_request(options: ClusterOptions, partition: Partition) -> None:
    """Refuse, before anything is submitted, jobs that the partition can never run.

    Raises
    ------
    EelsbatchError
        For a walltime under :data:`MIN_WALLTIME_S` or over the partition's MaxTime, and for
        cores, memory or GPUs per job beyond the partition's largest node.
    """
    from dask.utils import format_time, parse_bytes

    seconds = parse_walltime(options.walltime)
    if seconds < MIN_WALLTIME_S:
        raise ClusterError(None, f"walltime {options.walltime} is too short: a worker job needs at least {format_time(MIN_WALLTIME_S)} to start and do work")
    if partition.max_walltime_s is not None and seconds > partition.max_walltime_s:
        raise ClusterError(None, f"walltime {options.walltime} exceeds the MaxTime of partition {partition.name} ({format_time(partition.max_walltime_s)})")
    if options.jobs < 1 or options.cores < 1:
        raise ClusterError(None, f"jobs and cores must be at least 1 (got {options.jobs} and {options.cores})")
    if options.cores > partition.cpus:
        raise ClusterError(None, f"cores {options.cores}: the nodes of partition {partition.name} have at most {partition.cpus} CPUs")
    try:
        memory = parse_bytes(options.memory)
    except (ValueError, TypeError):
        raise ClusterError(None, f"memory {options.memory!r} is not an amount of memory (e.g. 16GB)") from None
    if memory > partition.memory_mb * 2**20:
        raise ClusterError(None, f"memory {options.memory}: the nodes of partition {partition.name} have at most {partition.memory_mb} MB")
    if options.gpus_per_job < 0:
        raise ClusterError(None, f"gpus_per_job must be 0 or more, not {options.gpus_per_job}")
    if options.gpus_per_job > partition.gpus:
        raise ClusterError(None, f"gpus_per_job {options.gpus_per_job}: the nodes of partition {partition.name} have at most {partition.gpus} GPUs")
    if options.gpus_per_job > options.cores:
        raise ClusterError(None, f"gpus_per_job {options.gpus_per_job} needs at least as many cores (one per GPU worker), not {options.cores}")


def _on_this_host(nodes: tuple[str, ...]) -> bool:
    names = {"localhost", socket.gethostname(), socket.gethostname().split(".")[0]}
    return bool(nodes) and set(nodes) <= names


@functools.cache
def _cluster_class() -> type:
    """dask-jobqueue's SLURMCluster, made to also cancel by job name anything it left in the queue."""
    from dask_jobqueue import SLURMCluster

    class EelsbatchSLURMCluster(SLURMCluster):
        async def _close(self) -> None:
            try:
                await super()._close()
            finally:
                cancel_jobs(self.job_name)

    return EelsbatchSLURMCluster


def cancel_jobs(job_name: str) -> None:
    """Cancel every job named ``job_name`` and wait (bounded) until ``squeue`` no longer lists them."""
    subprocess.run(["scancel", "--name", job_name], capture_output=True, timeout=_COMMAND_TIMEOUT_S, check=False)
    deadline = time.monotonic() + _COMMAND_TIMEOUT_S
    while time.monotonic() < deadline and job_ids(job_name) != []:
        time.sleep(0.5)


def job_ids(job_name: str) -> list[str] | None:
    """Ids of the jobs named ``job_name`` that ``squeue`` lists (pending, running or completing), or ``None``
    when ``squeue`` fails or does not answer in time (controller unreachable or busy): no answer is not an empty queue."""
    try:
        done = subprocess.run(["squeue", "-h", "--name", job_name, "-o", "%i"], capture_output=True, text=True,
                              timeout=_COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.split() if done.returncode == 0 else None


def slurm_cluster(options: ClusterOptions) -> SLURMCluster:
    """Start Dask workers as SLURM jobs and return the cluster once every worker has connected.

    Parameters
    ----------
    options
        ``queue`` (partition; default: SLURM's default one), ``account``, ``walltime``, ``cores``
        and ``memory`` per job, ``jobs``, ``gpus_per_job`` (``--gres=gpu:N`` and one worker per GPU
        with resource ``GPU=1``), ``job_extra`` (further ``#SBATCH`` directives), ``interface``
        (network interface of scheduler and workers; default loopback when the partition is
        this host alone), ``log_directory`` (job logs; default a fresh temporary folder),
        ``start_timeout`` (seconds to wait for all workers).

    Returns
    -------
    dask_jobqueue.SLURMCluster
        Started, with ``jobs`` jobs running; closing it cancels them all.

    Raises
    ------
    EelsbatchError
        If SLURM does not answer, the request does not fit the partition, or the workers do
        not all connect within ``start_timeout`` (the jobs are cancelled first).
    """
    partition = read_partition(options.queue)
    check_request(options, partition)
    gpus = options.gpus_per_job
    processes = gpus or max(1, options.cores // max(1, options.threads_per_worker))
    threads = max(1, options.cores // processes)
    log_directory = options.log_directory or tempfile.mkdtemp(prefix="eelsbatch-slurm-")
    interface = options.interface or ("lo" if _on_this_host(partition.nodes) else None)
    job_name = f"eelsbatch-{uuid.uuid4().hex[:8]}"
    worker_args = _lifetime_args(parse_walltime(options.walltime))
    worker_args += ["--resources", "GPU=1", "--preload", "eelsbatch.cluster._slurm"] if gpus else []
    cluster = _cluster_class()(
        queue=partition.name,
        account=options.account,
        walltime=options.walltime,
        cores=options.cores,
        processes=processes,
        memory=options.memory,
        job_name=job_name,
        python=sys.executable,
        interface=interface,
        local_directory=tempfile.gettempdir(),
        log_directory=log_directory,
        death_timeout=DEATH_TIMEOUT_S,
        job_extra_directives=([f"--gres=gpu:{gpus}"] if gpus else []) + list(options.job_extra),
        job_script_prologue=[
            f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} {_GPUS_ENV}={gpus}",
            # read by the nanny, which sets them before it starts the worker process (glibc reads them then)
            f'export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{ALLOCATOR_ENVIRONMENT!r}"',
        ],
        worker_extra_args=worker_args,
        # Without bokeh there is no dashboard, so no fixed port to hold either.
        scheduler_options={"dashboard_address": ":8787" if _has_bokeh() else ":0"},
    )
    try:
        cluster.scale(jobs=options.jobs)
        _wait_for_workers(cluster, options.jobs * processes, options.start_timeout, Path(log_directory))
    except BaseException:
        cluster.close()
        raise
    _keep_jobs(cluster, options.jobs)
    ids = ", ".join(sorted({job.job_id for job in cluster.workers.values() if getattr(job, "job_id", None)}))
    where = f"dashboard {cluster.dashboard_link}" if _has_bokeh() else "no dashboard (pip install bokeh)"
    print(f"eelsbatch: {options.jobs * processes} SLURM worker(s) in job(s) {ids} on partition {partition.name}; "
          f"{where}; job logs in {log_directory}", file=sys.stderr)
    return cluster


def _lifetime_args(walltime_s: int) -> list[str]:
    """Worker options that retire each worker gracefully before SLURM ends its job at the walltime.

    A margin of a tenth of the walltime (1 to 5 minutes), staggered by half of it so that the jobs
    do not all leave at once; :func:`_keep_jobs` then submits their replacements.
    """
    margin = min(300, max(60, walltime_s // 10))
    return ["--lifetime", f"{walltime_s - margin}s", "--lifetime-stagger", f"{margin // 2}s"]


def _keep_jobs(cluster: SLURMCluster, jobs: int) -> None:
    """Replace, every :data:`KEEP_JOBS_INTERVAL_S`, each job that has left the queue.

    A job ends at its walltime, or when it fails or is cancelled; its tasks go to the other
    workers and a new job with the same specification is submitted, until the cluster closes.
    """
    from distributed.core import Status
    from tornado.ioloop import PeriodicCallback

    async def replace_ended_jobs() -> None:
        if cluster.status != Status.running:
            return
        started = {name: job.job_id for name, job in cluster.workers.items() if getattr(job, "job_id", None)}
        process = await asyncio.create_subprocess_exec(
            "squeue", "-h", "--name", cluster.job_name, "-o", "%i",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await process.communicate()
        if process.returncode != 0 or cluster.status != Status.running:
            return  # the controller is busy or the cluster is closing: look again next time
        queued = set(out.decode().split())
        for name, job_id in started.items():
            if job_id not in queued and name in cluster.workers:
                del cluster.workers[name]
        cluster.scale(jobs=jobs)  # submits a job for every specification without a live one

    callback = PeriodicCallback(replace_ended_jobs, KEEP_JOBS_INTERVAL_S * 1000)
    cluster.periodic_callbacks["eelsbatch-keep-jobs"] = callback
    cluster.loop.add_callback(callback.start)


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _wait_for_workers(cluster: SLURMCluster, expected: int, timeout: float, log_directory: Path) -> None:
    """Wait until ``expected`` workers have connected; fail early when a job ended without one."""
    deadline = time.monotonic() + timeout
    while len(cluster.scheduler_info.get("workers", {})) < expected:
        # Jobs known before squeue is asked: sbatch returned their ids, so the controller holds them,
        # and one missing from squeue has ended, however soon (a job can fail before a first look).
        known = {job.job_id for job in cluster.workers.values() if getattr(job, "job_id", None)}
        ids = job_ids(cluster.job_name)
        gone = sorted(known - set(ids)) if ids is not None else []  # squeue not answering says nothing about the jobs
        if gone:
            raise ClusterError(None, f"SLURM job {gone[0]} ended before its worker connected{_log_tail(log_directory, gone[0])}")
        if time.monotonic() > deadline:
            state = ("squeue not answering" if ids is None else "still queued" if ids else "never submitted")
            raise ClusterError(None, f"SLURM: {expected} worker(s) did not connect within {timeout:.0f} s (jobs {state}; logs in {log_directory})")
        time.sleep(0.5)


def _log_tail(log_directory: Path, job_id: str) -> str:
    for log in sorted(log_directory.glob(f"*-{job_id}.err")):
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        if errors or lines:
            return f" ({log}: {(errors or lines)[-1][:200]})"
    return f" (logs in {log_directory})"


def dask_setup(worker) -> None:  # noqa: ANN001 - distributed's preload hook
    """Give each worker of a multi-GPU job its own GPU (``--preload eelsbatch.cluster._slurm``).

    The job's N workers are named ``<job>-0`` .. ``<job>-<N-1>``; worker ``i`` keeps only the
    ``i``-th device of the job's ``CUDA_VISIBLE_DEVICES`` (or device ``i`` where SLURM confines
    the job to its GPUs without setting the variable). Runs before any task imports torch.
    """
    gpus = int(os.environ.get(_GPUS_ENV, "0") or 0)
    if gpus < 2:
        return
    index = int(str(worker.name).rsplit("-", 1)[1]) % gpus
    devices = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d] or [str(i) for i in range(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[index % len(devices)]
