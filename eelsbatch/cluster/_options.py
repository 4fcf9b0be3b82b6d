"""How to get Dask workers (:class:`ClusterOptions`), and the environment every worker eelsbatch starts gets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import yaml

from eelsbatch.errors import ClusterError

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
            raise ClusterError(path, f"cannot read cluster configuration ({error.__class__.__name__})") from None
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ClusterError(path, f"unknown cluster option(s): {', '.join(unknown)}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
