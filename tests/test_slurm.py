"""eelsbatch on a live SLURM: workers as SLURM jobs through dask-jobqueue, ``synth`` and ``map`` end to
end with results equal to local runs, a job cancelled mid-run, bad requests refused before anything
is submitted, and no job of ours left in ``squeue`` afterwards.

Needs a running SLURM controller (``bash workflows/slurm-single-node.sh start`` as root, as CI does);
skipped with the reason where none answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from distributed import Client

from eelsbatch.cli import main
from eelsbatch.cluster import ClusterOptions, open_client
from eelsbatch.errors import EelsbatchError
from eelsbatch.io import is_complete, write_store
from eelsbatch.mapping import run_map
from eelsbatch.cluster._slurm import Partition, job_ids, read_partition
from eelsbatch.synth import spectrum_image

pytestmark = pytest.mark.slurm

QUICK = dict(walltime="00:05:00", memory="2GB", start_timeout=60.0)


def squeue_ids(*extra: str) -> set[str]:
    """Ids of all jobs in the queue (or those selected by ``extra`` squeue options)."""
    done = subprocess.run(["squeue", "-h", "-o", "%i", *extra], capture_output=True, text=True, timeout=30, check=True)
    return set(done.stdout.split())


@pytest.fixture(scope="module")
def partition() -> Partition:
    """The default partition of the running SLURM; skips the module where no controller answers."""
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"no SLURM here ({error.__class__.__name__}); start one with: bash workflows/slurm-single-node.sh start")
    if done.returncode != 0:
        pytest.skip(f"no SLURM controller answers ({done.stderr.strip()}); start one with: bash workflows/slurm-single-node.sh start")
    return read_partition(None)


@pytest.fixture()
def no_leftover_jobs(partition: Partition):
    """Fails the test if it leaves any new job in the queue (allowing SLURM a few seconds to end them)."""
    before = squeue_ids()
    yield
    deadline = time.monotonic() + 15
    while (left := squeue_ids() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"jobs left in squeue: {sorted(left)}"


def test_job_ids_tell_an_empty_queue_from_squeue_not_answering(partition: Partition, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """During start-up no answer from squeue must not read as every submitted job having ended."""
    assert job_ids(f"eelsbatch-none-{os.getpid()}") == []
    (tmp_path / "slurm.conf").write_text("")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))  # squeue cannot tell which controller to ask
    assert job_ids(f"eelsbatch-none-{os.getpid()}") is None


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 x 16 multilayer spectrum image in 16 chunks of 4 x 4 pixels (16 map tasks)."""
    counts, _ = spectrum_image("multilayer", (16, 16), seed=7)
    return write_store(counts, tmp_path_factory.mktemp("slurm-image") / "multilayer.zarr", chunks=[4, 4])


@pytest.fixture(scope="module")
def local_maps(image: Path, shipped_model: Path, tmp_path_factory: pytest.TempPathFactory, dask_client: Client) -> Path:
    """``image`` mapped on the local two-worker cluster: the reference for SLURM runs."""
    output = tmp_path_factory.mktemp("slurm-local") / "maps.zarr"
    run_map(image, output, shipped_model, dask_client, progress=False)
    return output


def assert_same_store(result: Path, reference: Path) -> None:
    got, expected = zarr.open_group(str(result), mode="r"), zarr.open_group(str(reference), mode="r")
    assert sorted(got.array_keys()) == sorted(expected.array_keys())
    for name in expected.array_keys():
        np.testing.assert_array_equal(got[name][:], expected[name][:], err_msg=name)


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    """Run the ``eelsbatch`` entry point in this process; return exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["eelsbatch", *arguments])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as exited:
        code = exited.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_workers_run_as_slurm_jobs_and_every_job_ends_with_the_client(partition: Partition, no_leftover_jobs: None) -> None:
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=2, **QUICK)
    with open_client(options) as client:
        worker_jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        running = squeue_ids("--states", "RUNNING", "--name", client.cluster.job_name)
        assert len(worker_jobs) == 2 and set(worker_jobs.values()) == running, (worker_jobs, running)
        assert all(address.startswith("tcp://127.0.0.1:") for address in worker_jobs)
        total = da.arange(100_000, chunks=10_000).sum().compute()
        assert total == 100_000 * 99_999 // 2
    assert not squeue_ids("--name", client.cluster.job_name)


def test_gpus_per_job_asks_for_gres_and_gives_each_gpu_one_worker(partition: Partition, no_leftover_jobs: None) -> None:
    if partition.gpus < 2:
        pytest.skip(f"partition {partition.name} offers {partition.gpus} GPU(s) per node; this test needs 2")
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=1, cores=2, gpus_per_job=2, **QUICK)
    with open_client(options) as client:
        assert "#SBATCH --gres=gpu:2" in client.cluster.job_script()
        info = client.scheduler_info()["workers"].values()
        assert sorted(worker["resources"].get("GPU") for worker in info) == [1, 1]
        env = client.run(lambda: (os.environ.get("SLURM_JOB_ID"), os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("SLURM_GPUS_ON_NODE")))
        assert len({job for job, _, _ in env.values()}) == 1, "both GPU workers belong to one SLURM job"
        assert sorted(device for _, device, _ in env.values()) == ["0", "1"], "each worker sees its own GPU"
        assert {gpus for _, _, gpus in env.values()} == {"2"}, "SLURM allocated two GPUs to the job"
        job = next(iter(env.values()))[0]
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, check=True).stdout
        assert "TresPerNode=gres:gpu:2" in shown
        squares = client.gather([client.submit(lambda x: x * x, i, resources={"GPU": 1}) for i in range(8)])
        assert squares == [i * i for i in range(8)]


def test_synth_on_slurm_equals_a_local_run(
    partition: Partition, tmp_path: Path, no_leftover_jobs: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    common = ["--n", "96", "--chunk-size", "24", "--channels", "512", "--seed", "4"]
    code, _, err = run_cli(monkeypatch, capsys, "synth", str(tmp_path / "local.zarr"), *common, "--workers", "1")
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "synth", str(tmp_path / "slurm.zarr"), *common, "--cluster", "slurm",
                           "--queue", partition.name, "--jobs", "2", "--walltime", "00:05:00", "--memory", "2GB")
    assert code == 0, err
    assert "2 SLURM worker(s) in job(s)" in err
    assert is_complete(tmp_path / "slurm.zarr")
    assert_same_store(tmp_path / "slurm.zarr", tmp_path / "local.zarr")


def test_map_on_slurm_equals_a_local_run(
    partition: Partition, image: Path, shipped_model: Path, local_maps: Path, tmp_path: Path, no_leftover_jobs: None,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    output = tmp_path / "maps.zarr"
    code, out, err = run_cli(monkeypatch, capsys, "map", str(image), str(output), "--model", str(shipped_model), "--cluster", "slurm",
                             "--queue", partition.name, "--jobs", "2", "--walltime", "00:05:00", "--memory", "2GB")
    assert code == 0, err
    assert "16 of 16 chunks computed" in out
    assert is_complete(output)
    assert_same_store(output, local_maps)


def test_a_worker_job_that_ends_is_replaced_by_a_new_job(partition: Partition, no_leftover_jobs: None) -> None:
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=1, **QUICK)
    with open_client(options) as client:
        (first,) = client.run(lambda: os.environ["SLURM_JOB_ID"]).values()
        subprocess.run(["scancel", first], check=True, timeout=30)  # as at the walltime, or a node failure
        deadline = time.monotonic() + 60
        jobs: set[str] = {first}
        while jobs in ({first}, set()) and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                jobs = set(client.run(lambda: os.environ["SLURM_JOB_ID"]).values())
            except OSError:  # the old worker left between listing and running
                continue
        assert len(jobs) == 1 and first not in jobs, f"no replacement job after {first} ended ({jobs})"
        assert jobs == squeue_ids("--name", client.cluster.job_name, "--states", "RUNNING")
        assert client.submit(sum, [4, 5, 6]).result() == 15


def _done_chunks(output: Path) -> int:
    try:
        return int(np.count_nonzero(zarr.open_group(str(output), mode="r")["progress"]["chunk_done"][:]))
    except Exception:  # noqa: BLE001 - the map run has not created the store yet
        return 0


class _JobCanceller(threading.Thread):
    """Cancels one SLURM job (``scancel``) once the first chunk of ``output`` is done."""

    def __init__(self, output: Path, job: str) -> None:
        super().__init__(daemon=True)
        self.output, self.job = output, job
        self.done_at_cancel: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            done = _done_chunks(self.output)
            if done >= 1:
                subprocess.run(["scancel", self.job], check=True, timeout=30)
                self.done_at_cancel = done
                return
            time.sleep(0.01)


def test_a_job_cancelled_mid_map_loses_and_duplicates_no_chunk(
    partition: Partition, image: Path, shipped_model: Path, local_maps: Path, tmp_path: Path, no_leftover_jobs: None
) -> None:
    output = tmp_path / "maps.zarr"
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=2, **QUICK)
    with open_client(options) as client:
        jobs = sorted(set(client.run(lambda: os.environ["SLURM_JOB_ID"]).values()))
        assert len(jobs) == 2
        canceller = _JobCanceller(output, jobs[0])
        canceller.start()
        try:
            summary = run_map(image, output, shipped_model, client, progress=False)
        finally:
            canceller.stop.set()
            canceller.join()
        assert canceller.done_at_cancel is not None and canceller.done_at_cancel < 16, "the job was not cancelled mid-run"
        assert jobs[0] not in squeue_ids("--states", "RUNNING")
    assert summary.chunks_computed == summary.chunks_total == 16
    assert zarr.open_group(str(output), mode="r")["progress"]["chunk_done"][:].all()
    assert is_complete(output)
    assert_same_store(output, local_maps)


def test_the_sbatch_recipe_maps_a_whole_image_in_one_job_and_a_resubmission_resumes_it(
    partition: Partition, image: Path, shipped_model: Path, local_maps: Path, tmp_path: Path, no_leftover_jobs: None
) -> None:
    recipe = Path(__file__).resolve().parents[1] / "workflows" / "map.sbatch"
    output = tmp_path / "maps.zarr"
    env = {**os.environ, "EELSBATCH_PYTHON": sys.executable}

    def submit(cancel_after_chunks: int | None = None) -> tuple[str, str]:
        done = subprocess.run(["sbatch", "--parsable", "-p", partition.name, "--chdir", str(tmp_path), str(recipe),
                               str(image), str(output), "--model", str(shipped_model)],
                              capture_output=True, text=True, env=env, timeout=30, check=True)
        job = done.stdout.strip().split(";")[0]
        deadline = time.monotonic() + 120
        while job in squeue_ids() and time.monotonic() < deadline:
            if cancel_after_chunks is not None and _done_chunks(output) >= cancel_after_chunks:
                subprocess.run(["scancel", job], check=True, timeout=30)  # as when the allocation's time is up
                cancel_after_chunks = None
            time.sleep(0.05)
        state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        return state, (tmp_path / f"eelsbatch-map-{job}.out").read_text()

    state, log = submit(cancel_after_chunks=2)
    assert "JobState=CANCELLED" in state, log
    done_before = _done_chunks(output)
    assert 2 <= done_before < 16 and not is_complete(output), f"cancelled too late: {done_before} of 16 chunks done"

    state, log = submit()
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, log
    assert "2 worker(s) connected" in log and f"{16 - done_before} of 16 chunks computed" in log, log
    assert not list(tmp_path.glob(".eelsbatch-*")), "the recipe left its scheduler folder behind"
    assert is_complete(output)
    assert_same_store(output, local_maps)


def test_the_training_recipe_synthesises_trains_and_a_resubmission_resumes(
    partition: Partition, tmp_path: Path, no_leftover_jobs: None
) -> None:
    recipe = Path(__file__).resolve().parents[1] / "workflows" / "train.sbatch"
    data, model = tmp_path / "train.zarr", tmp_path / "model"
    env = {**os.environ, "EELSBATCH_PYTHON": sys.executable, "EELSBATCH_SYNTH": "--n 96 --seed 11 --chunk-size 32"}

    def submit(epochs: int) -> tuple[str, str]:
        done = subprocess.run(["sbatch", "--parsable", "-p", partition.name, "-c", "1", "--mem", "2G", "--chdir", str(tmp_path),
                               str(recipe), str(data), str(model), "--epochs", str(epochs), "--batch-size", "32",
                               "--val-fraction", "0.34"], capture_output=True, text=True, env=env, timeout=30, check=True)
        job = done.stdout.strip().split(";")[0]
        deadline = time.monotonic() + 180
        while job in squeue_ids() and time.monotonic() < deadline:
            time.sleep(0.2)
        state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        return state, (tmp_path / f"eelsbatch-train-{job}.out").read_text()

    state, log = submit(epochs=1)
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, log
    assert f"wrote {data}" in log and "training on the CPU" in log and is_complete(data)
    first = json.loads((model / "config.json").read_text())["training"]["history"]

    state, log = submit(epochs=2)  # the same store, one more epoch: resumed from the checkpoint
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, log
    assert f"wrote {data}" not in log and "epoch 2: validation" in log and "epoch 1: validation" not in log, log
    history = json.loads((model / "config.json").read_text())["training"]["history"]
    assert [row["epoch"] for row in history] == [1, 2] and history[0] == first[0]


@pytest.fixture()
def dead_controller(tmp_path: Path) -> Path:
    """A copy of this SLURM's configuration whose controller port nothing listens on (and short
    client timeouts, so that the client gives up in a second rather than nine)."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        pytest.skip(f"no SLURM configuration at {conf} to copy")
    changed = ("SlurmctldPort=", "MessageTimeout=", "TCPTimeout=")
    lines = [line for line in conf.read_text().splitlines() if not line.startswith(changed)]
    bogus = tmp_path / "slurm.conf"
    bogus.write_text("\n".join(lines + ["SlurmctldPort=9", "MessageTimeout=1", "TCPTimeout=1"]) + "\n")
    return bogus


BAD_REQUESTS = {
    "unknown-partition": (["--queue", "no-such-partition"], "queue no-such-partition: no such SLURM partition (partitions here: "),
    "walltime-too-short": (["--walltime", "00:01:00"], "walltime 00:01:00 is too short"),
    "walltime-over-maxtime": (["--walltime", "400-00:00:00"], "walltime 400-00:00:00 exceeds the MaxTime of partition"),
    "walltime-not-a-time": (["--walltime", "soon"], "walltime 'soon' is not a SLURM time"),
    "memory": (["--memory", "100TB"], "memory 100TB: the nodes of partition"),
    "cores": (["--cores", "4096"], "cores 4096: the nodes of partition"),
    "gpus": (["--gpus-per-job", "64", "--cores", "1"], "gpus_per_job 64: the nodes of partition"),
    "controller-unreachable": (["unreachable"], "SLURM does not answer (sinfo: "),
}
CASES = [(command, name) for command in ("map", "synth") for name in BAD_REQUESTS]


@pytest.mark.parametrize(("command", "case"), CASES, ids=[f"{command}-{case}" for command, case in CASES])
def test_bad_slurm_requests_are_one_line_errors_with_no_job_and_no_output(
    command: str, case: str, partition: Partition, image: Path, shipped_model: Path, tmp_path: Path,
    no_leftover_jobs: None, dead_controller: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    arguments, phrase = BAD_REQUESTS[case]
    if arguments == ["unreachable"]:
        monkeypatch.setenv("SLURM_CONF", str(dead_controller))
        arguments = []
    output = tmp_path / "out.zarr"
    inputs = [str(output), "--n", "8"] if command == "synth" else [str(image), str(output), "--model", str(shipped_model)]
    code, out, err = run_cli(monkeypatch, capsys, command, *inputs, "--cluster", "slurm", "--walltime", "00:05:00", *arguments)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("eelsbatch: error: "), err
    assert phrase in lines[0] and "Traceback" not in err + out
    assert not output.exists() and not is_complete(output)


def test_a_worker_job_whose_python_cannot_start_is_one_error_and_leaves_no_job(partition: Partition, no_leftover_jobs: None) -> None:
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=2, job_extra=["--export=ALL,PYTHONHOME=/no/such/python"], **QUICK)
    started = time.monotonic()
    with pytest.raises(EelsbatchError, match=r"SLURM job \d+ ended before its worker connected") as raised:
        with open_client(options):
            pass
    assert "\n" not in str(raised.value)
    assert time.monotonic() - started < 30, "a failed job should be noticed at once, not after start_timeout"


def test_workers_that_never_start_are_waited_for_a_bounded_time_then_cancelled(partition: Partition, no_leftover_jobs: None) -> None:
    options = ClusterOptions(cluster="slurm", queue=partition.name, jobs=2, job_extra=["--begin=now+1hour"],
                             **{**QUICK, "start_timeout": 3.0})
    started = time.monotonic()
    with pytest.raises(EelsbatchError, match=r"2 worker\(s\) did not connect within 3 s \(jobs still queued"):
        with open_client(options):
            pass
    assert time.monotonic() - started < 30
