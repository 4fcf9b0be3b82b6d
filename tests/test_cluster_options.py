"""Cluster options: YAML configuration, command-line overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from eelsbatch.cli import cluster_options
from eelsbatch.cluster import ALLOCATOR_ENVIRONMENT, ClusterOptions, open_client
from eelsbatch.errors import EelsbatchError


def test_config_file_values_are_overridden_by_command_line(tmp_path: Path) -> None:
    config = tmp_path / "gpu.yaml"
    config.write_text("cluster: slurm\nqueue: gpu\ngpus_per_job: 4\nwalltime: '02:00:00'\n")
    options = cluster_options(cluster_config=config, walltime="00:30:00")
    assert options == ClusterOptions(cluster="slurm", queue="gpu", gpus_per_job=4, walltime="00:30:00")


def test_unknown_key_in_config_file_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("queue: gpu\ngpu_per_job: 4\n")
    with pytest.raises(EelsbatchError, match=r"typo\.yaml: unknown cluster option\(s\): gpu_per_job"):
        cluster_options(cluster_config=config)


def test_unknown_cluster_kind_is_refused() -> None:
    with pytest.raises(EelsbatchError, match="--cluster must be 'local' or 'slurm'"):
        cluster_options(cluster="pbs")


def test_local_client_runs_work_on_separate_worker_processes() -> None:
    import os

    with open_client(ClusterOptions(n_workers=2)) as client:
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        assert client.submit(sum, [1, 2, 3]).result() == 6


def _start_environment() -> dict[str, str]:
    """The environment this process was started with (what glibc read), not os.environ now."""
    pairs = Path("/proc/self/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


def test_local_workers_start_with_the_allocator_settings() -> None:
    """Set before the worker process starts: Dask's 64 kB trim threshold made inference 2.3x slower."""
    with open_client(ClusterOptions(n_workers=1)) as client:
        (environment,) = client.run(_start_environment).values()
    assert {key: environment.get(key) for key in ALLOCATOR_ENVIRONMENT} == ALLOCATOR_ENVIRONMENT


def test_unreachable_scheduler_is_one_clear_error() -> None:
    with pytest.raises(EelsbatchError, match=r"tcp://127\.0\.0\.1:9: cannot reach the Dask scheduler"):
        with open_client(ClusterOptions(scheduler="tcp://127.0.0.1:9")):
            pass
