"""The SLURM path's parts that need no SLURM: time limits, the GPU-per-worker choice, the example
configuration, and the error where SLURM is not installed."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from eelsbatch.cluster import ClusterOptions, open_client
from eelsbatch.errors import EelsbatchError
from eelsbatch.cluster._slurm import dask_setup, parse_walltime

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def test_walltimes_are_read_in_every_slurm_format() -> None:
    texts = ("90", "2:30", "01:00:00", "1-0", "1-02:03", "1-02:03:04")
    assert [parse_walltime(text) for text in texts] == [5400, 150, 3600, 86400, 93780, 93784]
    with pytest.raises(EelsbatchError, match="walltime '1h' is not a SLURM time"):
        parse_walltime("1h")


@pytest.mark.parametrize(
    ("visible", "names", "expected"),
    [
        ("4,6", ["job-3-0", "job-3-1"], ["4", "6"]),  # SLURM set CUDA_VISIBLE_DEVICES for the job
        (None, ["job-3-0", "job-3-1"], ["0", "1"]),  # cgroup-confined job: its GPUs are 0..N-1
    ],
)
def test_each_worker_of_a_multi_gpu_job_keeps_one_gpu(
    visible: str | None, names: list[str], expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EELSBATCH_GPUS_PER_JOB", "2")
    seen = []
    for name in names:
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        dask_setup(SimpleNamespace(name=name))
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == expected


def test_a_single_gpu_worker_keeps_what_slurm_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EELSBATCH_GPUS_PER_JOB", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    dask_setup(SimpleNamespace(name="job-7"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_the_gpu_example_configuration_is_valid() -> None:
    options = ClusterOptions.from_file(WORKFLOWS / "slurm-gpu.yaml")
    assert options.cluster == "slurm" and options.gpus_per_job >= 1 and options.cores >= options.gpus_per_job
    assert parse_walltime(options.walltime) >= 120


def test_slurm_not_installed_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EelsbatchError, match="SLURM is not installed here"):
        with open_client(ClusterOptions(cluster="slurm")):
            pass
