"""The ``eelsbatch`` command line: a thin Typer layer over the Python API.

Each command parses its options and calls one function of the package. Any
:class:`~eelsbatch.errors.EelsbatchError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from eelsbatch.errors import EelsbatchError

if TYPE_CHECKING:
    from eelsbatch.cluster import ClusterOptions

app = typer.Typer(
    help="Find core-loss edges in every pixel of EELS spectrum images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Find core-loss edges in every pixel of EELS spectrum images."""


_CLUSTER = "Cluster"
SchedulerOption = Annotated[Optional[str], typer.Option("--scheduler", help="Address of an existing Dask scheduler.", rich_help_panel=_CLUSTER)]
ClusterKindOption = Annotated[str, typer.Option("--cluster", help="'local' (default) or 'slurm'.", rich_help_panel=_CLUSTER)]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", help="Local worker processes (default: one per core).", rich_help_panel=_CLUSTER)]
ThreadsOption = Annotated[Optional[int], typer.Option("--threads-per-worker", help="Threads per worker (torch threads too).", rich_help_panel=_CLUSTER)]
ClusterConfigOption = Annotated[Optional[Path], typer.Option("--cluster-config", help="YAML file of cluster options (see workflows/).", rich_help_panel=_CLUSTER)]
QueueOption = Annotated[Optional[str], typer.Option("--queue", help="SLURM partition.", rich_help_panel=_CLUSTER)]
AccountOption = Annotated[Optional[str], typer.Option("--account", help="SLURM account.", rich_help_panel=_CLUSTER)]
WalltimeOption = Annotated[Optional[str], typer.Option("--walltime", help="SLURM job walltime, HH:MM:SS.", rich_help_panel=_CLUSTER)]
CoresOption = Annotated[Optional[int], typer.Option("--cores", help="Cores per SLURM job.", rich_help_panel=_CLUSTER)]
MemoryOption = Annotated[Optional[str], typer.Option("--memory", help="Memory per SLURM job, e.g. 16GB.", rich_help_panel=_CLUSTER)]
JobsOption = Annotated[Optional[int], typer.Option("--jobs", help="Number of SLURM jobs.", rich_help_panel=_CLUSTER)]
GpusOption = Annotated[Optional[int], typer.Option("--gpus-per-job", help="GPUs per SLURM job (--gres=gpu:N, one worker per GPU).", rich_help_panel=_CLUSTER)]


def cluster_options(
    scheduler: Optional[str] = None,
    cluster: str = "local",
    workers: Optional[int] = None,
    threads_per_worker: Optional[int] = None,
    cluster_config: Optional[Path] = None,
    queue: Optional[str] = None,
    account: Optional[str] = None,
    walltime: Optional[str] = None,
    cores: Optional[int] = None,
    memory: Optional[str] = None,
    jobs: Optional[int] = None,
    gpus_per_job: Optional[int] = None,
) -> ClusterOptions:
    """Build :class:`ClusterOptions` from the shared cluster options of ``synth`` and ``map``.

    Values given on the command line override those of ``--cluster-config``.
    """
    from eelsbatch.cluster import ClusterOptions

    if cluster not in ("local", "slurm"):
        raise EelsbatchError(None, f"--cluster must be 'local' or 'slurm', not {cluster!r}")
    given = dict(
        scheduler=scheduler,
        cluster=cluster if cluster != "local" else None,
        n_workers=workers,
        threads_per_worker=threads_per_worker,
        queue=queue,
        account=account,
        walltime=walltime,
        cores=cores,
        memory=memory,
        jobs=jobs,
        gpus_per_job=gpus_per_job,
    )
    if cluster_config is not None:
        return ClusterOptions.from_file(cluster_config, **given)
    return ClusterOptions(**{key: value for key, value in given.items() if value is not None})


@app.command()
def convert(
    input: Annotated[Path, typer.Argument(help="Instrument file (.dm3, .dm4, .emd, .hspy, .zspy, .msa, .emi, ...).")],
    output: Annotated[Path, typer.Argument(help="Zarr store to write, e.g. OUT.zarr.")],
    signal: Annotated[Optional[str], typer.Option(help="Signal index or title where a file holds several (default: the core-loss EELS one).")] = None,
    chunks: Annotated[Optional[str], typer.Option(help="Navigation chunk sizes, comma-separated (e.g. 64,64); default ~32 MB chunks.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output store.")] = False,
) -> None:
    """Convert an instrument file into a chunked, compressed Zarr store."""
    from eelsbatch.io import open_spectrum_image, write_store

    chunk_sizes = _parse_sizes(chunks, "--chunks") if chunks else None
    counts = open_spectrum_image(input, signal=signal)
    write_store(counts, output, chunks=chunk_sizes, overwrite=overwrite)
    typer.echo(f"wrote {output} ({', '.join(f'{d}={n}' for d, n in counts.sizes.items())})")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="Instrument file or eelsbatch store.")]) -> None:
    """Describe an instrument file or a store: dims, energy axis, chunks, metadata, completeness."""
    from eelsbatch.io._info import describe

    typer.echo(describe(path))


def _parse_sizes(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        raise EelsbatchError(None, f"{option} takes integers separated by commas, not {text!r}") from None


def main() -> None:
    """Console entry point: run the app, turning input errors into one-line messages."""
    try:
        app()
    except EelsbatchError as error:
        print(f"eelsbatch: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("eelsbatch: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
