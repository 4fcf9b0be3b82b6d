"""The ``eelsbatch`` command line: a thin Typer layer over the Python API.

Each command parses its options and calls one function of the package. Any
:class:`~eelsbatch.errors.EelsbatchError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from eelsbatch.errors import EelsbatchError, Interrupted
from eelsbatch.shipped import SHIPPED_MODEL

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
SectorStartsOption = Annotated[Optional[str], typer.Option(
    "--sector-starts", help="Channels where the detector's readout sectors start, e.g. 1024, or 512,1024,1536, or none "
    "(one port): give it for a spectrum cropped before saving (default: the store's record, else 2 or 4 equal shares of the channels).")]
ExpectOption = Annotated[Optional[str], typer.Option(
    "--expect", help="Elements you know are in the specimen, e.g. Fe,O: a prior (odds x4), not a filter.")]
ExcludeOption = Annotated[Optional[str], typer.Option(
    "--exclude", help="Elements you know are not, e.g. Sb,Pr: a prior (odds x0.05); overwhelming evidence still reports them.")]
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
    sector_starts: SectorStartsOption = None,
) -> None:
    """Convert an instrument file into a chunked, compressed Zarr store."""
    from eelsbatch.io import open_spectrum_image, write_store
    from eelsbatch.readout import SECTOR_STARTS_ATTR

    chunk_sizes = _parse_sizes(chunks, "--chunks") if chunks else None
    counts = open_spectrum_image(input, signal=signal)
    starts = _sector_starts(sector_starts, input, channels=counts.sizes["energy"])
    if starts is not None:
        counts.attrs[SECTOR_STARTS_ATTR] = starts
    write_store(counts, output, chunks=chunk_sizes, overwrite=overwrite)
    typer.echo(f"wrote {output} ({', '.join(f'{d}={n}' for d, n in counts.sizes.items())})")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="Instrument file or eelsbatch store.")]) -> None:
    """Describe an instrument file or a store: dims, energy axis, chunks, metadata, completeness."""
    from eelsbatch.io._info import describe

    typer.echo(describe(path))


@app.command()
def synth(
    output: Annotated[Path, typer.Argument(help="Zarr store to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of spectra (training-set mode).")] = 1000,
    seed: Annotated[int, typer.Option(help="Data-set seed: the same seed gives the same data on any cluster.")] = 0,
    channels: Annotated[int, typer.Option(help="Channels per spectrum.")] = 2048,
    chunk_size: Annotated[int, typer.Option(help="Spectra per task and per Zarr chunk.")] = 1000,
    elements: Annotated[Optional[str], typer.Option(help="Fixed composition, e.g. Fe,O (default: drawn per spectrum).")] = None,
    spectrum_image: Annotated[bool, typer.Option("--spectrum-image", help="Write a structured spectrum image with ground-truth maps.")] = False,
    shape: Annotated[str, typer.Option(help="Spectrum-image size, e.g. 64x64.")] = "64x64",
    structure: Annotated[str, typer.Option(help="core-shell, multilayer or grains.")] = "core-shell",
    energy_offset: Annotated[Optional[float], typer.Option(help="Fixed energy offset in eV (default: drawn per spectrum; 250 for images).")] = None,
    dispersion: Annotated[Optional[float], typer.Option(help="Fixed dispersion in eV/channel (default: drawn; 0.5 for images).")] = None,
    blank_probability: Annotated[Optional[float], typer.Option(help="Share of blank readouts, pixels with no specimen (default: the forward model's, 0.03; a training-set knob).")] = None,
    sector_probability: Annotated[Optional[float], typer.Option(help="Share of spectra read out through 2 or 4 detector ports with their own gains (default: the forward model's, 0.1; a training-set knob).")] = None,
    cropped_probability: Annotated[Optional[float], typer.Option(help="Of those, the share saved cropped from a longer detector axis, their steps off the equal shares (default 0; a training-set knob).")] = None,
    sector_gain: Annotated[Optional[float], typer.Option(help="Largest gain difference of a readout sector from the first, relative (default: the forward model's, 0.04; a training-set knob).")] = None,
    dispersion_range: Annotated[Optional[str], typer.Option(help="Range of the drawn dispersion in eV/channel, e.g. 0.05,0.4 (default: the model range, 0.05,2; a training-set knob).")] = None,
    real_acquisitions: Annotated[bool, typer.Option("--real-acquisitions", help="Draw the cases of real instruments too: real specimens' compositions, axes off by up to 20 eV, narrow windows, background-subtracted and deconvolved spectra, 0.01-2 eV/channel (a training-set knob; the other knobs apply on top).")] = False,
    preview: Annotated[Optional[Path], typer.Option(help="Also write a PNG of a few spectra with their edges marked.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output store.")] = False,
    scheduler: SchedulerOption = None,
    cluster: ClusterKindOption = "local",
    workers: WorkersOption = None,
    threads_per_worker: ThreadsOption = None,
    cluster_config: ClusterConfigOption = None,
    queue: QueueOption = None,
    account: AccountOption = None,
    walltime: WalltimeOption = None,
    cores: CoresOption = None,
    memory: MemoryOption = None,
    jobs: JobsOption = None,
    gpus_per_job: GpusOption = None,
) -> None:
    """Synthesise labelled core-loss spectra (or a structured spectrum image) in parallel into Zarr."""
    from eelsbatch.cluster import open_client
    from eelsbatch.io import prepare_output
    from eelsbatch.synth import generate, write_spectrum_image, write_training_set
    from eelsbatch.synth._forward import DEFAULT_QUALITY, REAL_ACQUISITIONS
    from eelsbatch.synth._generate import check_elements
    from eelsbatch.synth._image import DEFAULT_WINDOW, check_window

    if n < 1:
        raise EelsbatchError(None, f"--n must be a positive number of spectra, not {n}")
    knobs = {name: value for name, value in {"blank_probability": blank_probability, "sector_probability": sector_probability,
                                           "cropped_probability": cropped_probability, "sector_gain": sector_gain}.items()
              if value is not None}
    for name, value in knobs.items():
        if not 0.0 <= value <= 1.0:
            raise EelsbatchError(None, f"--{name.replace('_', '-')} must lie between 0 and 1, not {value}")
    if dispersion_range is not None:
        knobs["dispersion_range"] = _parse_range(dispersion_range, "--dispersion-range")
    quality = dataclasses.replace(REAL_ACQUISITIONS if real_acquisitions else DEFAULT_QUALITY, **knobs)
    composition = check_elements(_listed(elements)) if elements else None
    window = None
    if energy_offset is not None or dispersion is not None or spectrum_image:
        window = (DEFAULT_WINDOW[0] if energy_offset is None else energy_offset, DEFAULT_WINDOW[1] if dispersion is None else dispersion)
        check_window(window, channels)
    prepare_output(output, overwrite)
    options = cluster_options(scheduler, cluster, workers, threads_per_worker, cluster_config, queue, account,
                              walltime, cores, memory, jobs, gpus_per_job)
    with open_client(options) as client:
        if spectrum_image:
            size = _parse_sizes(shape, "--shape")
            write_spectrum_image(output, structure, (size[0], size[-1]), seed, client, channels, window, overwrite)
        else:
            write_training_set(output, n, seed, client, channels, chunk_size, composition, window, overwrite, quality)
    typer.echo(f"wrote {output}")
    if preview is not None:
        from eelsbatch.plot import plot_synthetic_preview

        plot_synthetic_preview(generate(4, seed, 0, channels, composition, window, quality), preview)
        typer.echo(f"wrote {preview}")


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Training store from `eelsbatch synth`; give it again to train on several as one.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write, e.g. models/NAME.")],
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 6,
    batch_size: Annotated[int, typer.Option(help="Spectra per optimisation step.")] = 256,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 2e-3,
    val_fraction: Annotated[float, typer.Option(help="Share of each store's chunks held out for validation and calibration.")] = 0.05,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt.")] = False,
    threads: Annotated[Optional[int], typer.Option(help="Torch CPU threads.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and shuffling.")] = 0,
    init_from: Annotated[Optional[Path], typer.Option(help="Model folder whose weights start the training (fine-tuning).")] = None,
    chunks_per_epoch: Annotated[Optional[int], typer.Option(help="Training chunks drawn per epoch (default: all).")] = None,
    false_alarm_rate: Annotated[float, typer.Option(help="Largest share of edge-free validation spectra allowed to report an element at the saved threshold.")] = 0.01,
    width: Annotated[Optional[int], typer.Option(help="Convolution channels (default: 48, or INIT_FROM's).")] = None,
    hidden: Annotated[Optional[int], typer.Option(help="LSTM hidden size per direction (default: 48, or INIT_FROM's).")] = None,
    evidence: Annotated[Optional[int], typer.Option(help="Evidence channels per step (default: 16, or INIT_FROM's).")] = None,
    inputs: Annotated[Optional[int], typer.Option(help="Input channels: 3 (intensity, mask, readout-sector boundaries; the default) or 2; INIT_FROM's by default.")] = None,
    readout_families: Annotated[Optional[int], typer.Option(help="Edge families read out per element: 6 (K, L2,3, M4,5, N4,5 and the minor L1, M2,3; the default) or 4 (the major ones); INIT_FROM's by default.")] = None,
    loader_workers: Annotated[Optional[int], typer.Option(help="Processes preparing chunks ahead of the training step (default: 0 on the CPU, up to 8 with a GPU).")] = None,
) -> None:
    """Train the CNN-BiLSTM recogniser on synthetic spectra (CPU here, GPU where there is one).

    With --init-from and larger sizes, the starting model is widened first without changing its outputs.
    """
    from eelsbatch.model._train import train as train_model
    from eelsbatch.synth import ELEMENTS

    train_model(data, out, list(ELEMENTS), epochs, batch_size, learning_rate, val_fraction, resume, seed, threads,
                init_from=init_from, chunks_per_epoch=chunks_per_epoch, false_alarm_rate=false_alarm_rate,
                sizes={name: size for name, size in {"width": width, "hidden": hidden, "evidence": evidence, "input_channels": inputs,
                                                 "families": readout_families}.items() if size},
                loader_workers=loader_workers)
    typer.echo(f"wrote {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help=f"Model folder, e.g. models/NAME or the shipped {SHIPPED_MODEL}.")],
    data: Annotated[Path, typer.Option("--data", help="Labelled synthetic store, instrument file, or convert store.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for evaluation.json and evaluation.png (synthetic data).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Detection threshold (default: the model's).")] = None,
    signal: Annotated[Optional[str], typer.Option(help="Signal of a multi-signal instrument file.")] = None,
    sector_starts: SectorStartsOption = None,
    expect: ExpectOption = None,
    exclude: ExcludeOption = None,
) -> None:
    """Measure the recogniser on labelled spectra, or list the elements it finds in real ones."""
    from eelsbatch.model import load_recogniser
    from eelsbatch.model._evaluate import elements_in_sum, evaluate_store, write_evaluation
    from eelsbatch.model._report import summarise

    recogniser = load_recogniser(model)
    odds = _prior_odds(recogniser.elements, expect, exclude)
    if data.is_dir() and _store_kind(data) == "training_set":
        if odds is not None:
            raise EelsbatchError(data, "--expect and --exclude are an analyst's knowledge of one specimen; a "
                                 "synthetic store holds many")
        metrics = evaluate_store(recogniser, data, threshold)
        typer.echo(summarise(metrics))
        if out is not None:
            for path in write_evaluation(metrics, out):
                typer.echo(f"wrote {path}")
        return
    from eelsbatch.io import open_spectrum_image
    from eelsbatch.mapping._alternatives import found_alternatives

    if threshold is not None:
        recogniser.threshold = threshold
    from eelsbatch.readout import SECTOR_STARTS_ATTR

    counts = open_spectrum_image(data, signal=signal)
    starts = _sector_starts(sector_starts, data, counts.attrs.get(SECTOR_STARTS_ATTR), counts.sizes["energy"])
    found = elements_in_sum(recogniser, counts.values, counts["energy"].values, starts, odds)
    if warning := recogniser.acquisition_warning(counts["energy"].values):
        print(f"eelsbatch: warning: {data}: {warning}", file=sys.stderr)
    typer.echo(f"{data}: sum of {counts.size // counts.sizes['energy']} spectrum(s), {float(counts['energy'][0]):.1f}-{float(counts['energy'][-1]):.1f} eV")
    alternatives = found_alternatives([e for e, _ in found], counts["energy"].values, recogniser.elements)
    typer.echo("elements found: " + (", ".join(f"{e} ({p:.2f}{'; or ' + ', '.join(alternatives[e]) if e in alternatives else ''})"
                                              for e, p in found) or "none reported"))


def _store_kind(path: Path) -> str | None:
    import zarr

    from eelsbatch.io import KIND_ATTR

    try:
        return zarr.open_group(str(path), mode="r").attrs.get(KIND_ATTR)
    except Exception:  # noqa: BLE001 - not a store: let the reader report it
        return None


@app.command("map")
def map_command(
    input: Annotated[Path, typer.Argument(help="Spectrum-image store or instrument file.")],
    output: Annotated[Path, typer.Argument(help="Maps store to write, e.g. MAPS.zarr.")],
    model: Annotated[Optional[Path], typer.Option(help=f"Model folder (default: the shipped {SHIPPED_MODEL.name}).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Presence threshold (default: the model's).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run into OUTPUT.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUTPUT.")] = False,
    scheduler: SchedulerOption = None,
    cluster: ClusterKindOption = "local",
    workers: WorkersOption = None,
    threads_per_worker: ThreadsOption = None,
    cluster_config: ClusterConfigOption = None,
    queue: QueueOption = None,
    account: AccountOption = None,
    walltime: WalltimeOption = None,
    cores: CoresOption = None,
    memory: MemoryOption = None,
    jobs: JobsOption = None,
    gpus_per_job: GpusOption = None,
    sector_starts: SectorStartsOption = None,
    expect: ExpectOption = None,
    exclude: ExcludeOption = None,
) -> None:
    """Map which elements are where: per-pixel edge recognition and classic edge-intensity maps."""
    from eelsbatch.cluster import open_client
    from eelsbatch.mapping import execute_map, prepare_map

    # every argument is checked (and an instrument file converted) before the cluster's workers start
    plan = prepare_map(input, output, model or SHIPPED_MODEL, threshold, resume, overwrite,
                       _sector_starts(sector_starts, input), _listed(expect), _listed(exclude))
    options = cluster_options(scheduler, cluster, workers, threads_per_worker, cluster_config, queue, account,
                              walltime, cores, memory, jobs, gpus_per_job)
    try:
        with open_client(options) as client:
            summary = execute_map(plan, client)
    except KeyboardInterrupt:
        raise Interrupted(output, "interrupted; run the same command again with --resume to continue") from None
    if summary.warning:
        print(f"eelsbatch: warning: {input}: {summary.warning}", file=sys.stderr)
    for line in (summary.invalid_text(), summary.unmeasured_text()):
        if line:
            print(f"eelsbatch: warning: {input}: {line}", file=sys.stderr)
    typer.echo(
        f"mapped {summary.spectra} spectra in {summary.seconds:.1f} s ({summary.spectra_per_second:.0f} spectra/s), "
        f"{summary.chunks_computed} of {summary.chunks_total} chunks computed; "
        f"elements found: {summary.found_text()}; wrote {output}"
    )


@app.command()
def plot(
    maps: Annotated[Path, typer.Argument(help="Maps store written by `eelsbatch map`.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("maps.png"),
) -> None:
    """Plot element maps with scale bars, and the sum spectrum with the found edges marked."""
    from eelsbatch.plot import plot_maps

    typer.echo(f"wrote {plot_maps(maps, out)}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's stores and PNG.")] = Path("eelsbatch-demo"),
    shape: Annotated[str, typer.Option(help="Spectrum-image size.")] = "48x48",
    structure: Annotated[str, typer.Option(help="core-shell, multilayer or grains.")] = "core-shell",
    workers: WorkersOption = None,
) -> None:
    """Synthesise a structured spectrum image, map it with the shipped model on a local cluster, and plot it."""
    from eelsbatch.cluster import ClusterOptions, open_client
    from eelsbatch.mapping import run_map
    from eelsbatch.mapping._truth import compare_with_truth
    from eelsbatch.plot import plot_maps
    from eelsbatch.synth import write_spectrum_image

    out.mkdir(parents=True, exist_ok=True)
    size = _parse_sizes(shape, "--shape")
    image, maps, png = out / "spectrum_image.zarr", out / "maps.zarr", out / "maps.png"
    with open_client(ClusterOptions(n_workers=workers)) as client:
        typer.echo(f"synthesising a {shape} {structure} spectrum image into {image}")
        write_spectrum_image(image, structure, (size[0], size[-1]), 0, client, overwrite=True)
        summary = run_map(image, maps, SHIPPED_MODEL, client, overwrite=True)
    typer.echo(f"mapped {summary.spectra} spectra in {summary.seconds:.1f} s ({summary.spectra_per_second:.0f} spectra/s); "
               f"elements found: {summary.found_text()}")
    scores, stray = compare_with_truth(maps, image)
    for element, iou in scores.items():
        typer.echo(f"  {element}: IoU of the map with the ground truth {iou:.3f}")
    pixels = summary.pixels or 1
    typer.echo("  stray pixels (an element the image does not hold): "
               + (", ".join(f"{e} {n} ({n / pixels:.1%})" for e, n in stray.items()) or "none"))
    typer.echo(f"wrote {maps} and {plot_maps(maps, png)}")


def _listed(text: str | None) -> list[str]:
    """``Fe,O`` as ``["Fe", "O"]`` (nothing for None)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _prior_odds(elements: list[str], expect: str | None, exclude: str | None):
    """The odds factors of ``--expect`` and ``--exclude`` (:func:`eelsbatch.model._priors.analyst_priors`), or None."""
    from eelsbatch.model._priors import analyst_priors

    return analyst_priors(elements, _listed(expect), _listed(exclude))[2]


def _parse_range(text: str, option: str) -> tuple[float, float]:
    """``LOW,HIGH`` as two positive numbers, the first below the second (one-line error otherwise)."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise EelsbatchError(None, f"{option} must be two numbers LOW,HIGH, not {text!r}") from None
    if not 0 < low < high:
        raise EelsbatchError(None, f"{option} must be LOW,HIGH with 0 < LOW < HIGH, not {text!r}")
    return low, high


def _sector_starts(text: str | None, source: Path, recorded: list[int] | None = None,
                   channels: int | None = None) -> list[int] | None:
    """``--sector-starts`` parsed, else the ``recorded`` layout; checked against the axis where ``channels`` is known
    (:func:`eelsbatch.readout.chosen_sector_starts`). A one-line error naming ``source`` for a bad one."""
    from eelsbatch.readout import chosen_sector_starts, parse_sector_starts

    try:
        given = None if text is None else parse_sector_starts(text)
        return given if channels is None else chosen_sector_starts(given, recorded, channels)
    except ValueError as error:
        raise EelsbatchError(source, f"--sector-starts: {error}") from None


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
        print(f"eelsbatch: {'error: ' if error.exit_code == 2 else ''}{error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("eelsbatch: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
