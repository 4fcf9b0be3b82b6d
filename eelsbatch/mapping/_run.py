"""Run ``map`` over a whole spectrum image on a Dask client: resumable, retried, marked complete at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
import zarr
from distributed import Client, as_completed
from tqdm import tqdm

from eelsbatch.errors import EelsbatchError, InputError, StoreError
from eelsbatch.io import is_complete, open_spectrum_image, open_store, prepare_output, remove_store, store_id, write_store
from eelsbatch.mapping._alternatives import describe_found, found_alternatives
from eelsbatch.mapping._chunk import ModelPlugin, finish_chunk, map_chunk
from eelsbatch.mapping._intensity import IntegrationWindow
from eelsbatch.mapping._kernel import default_windows, found_elements, found_windows
from eelsbatch.mapping._layout import (
    blocks,
    create_maps_store,
    done_blocks,
    finish_maps_store,
    pixel_tallies,
    provenance,
)
from eelsbatch.model._priors import analyst_priors, prior_odds
from eelsbatch.readout import SECTOR_STARTS_ATTR, chosen_sector_starts

if TYPE_CHECKING:
    from eelsbatch.model import Recogniser


@dataclass
class MapSummary:
    """What a map run did."""

    spectra: int
    seconds: float
    elements_found: list[str]
    chunks_computed: int
    chunks_total: int
    timings: dict[str, float] = field(default_factory=dict)
    warning: str | None = None  # why the maps may not hold (:meth:`Recogniser.acquisition_warning`)
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # found element -> elements with the same edges here
    invalid_pixels: int = 0  # pixels not judged: too few finite channels on the model grid
    pixels: int = 0
    unmeasured: list[str] = field(default_factory=list)  # found elements with no background window clear of the others

    def unmeasured_text(self) -> str | None:
        """One line on the found elements whose classic map could not be measured cleanly, or None."""
        if not self.unmeasured:
            return None
        return (f"no background window clear of the other found elements' edges for {', '.join(self.unmeasured)}: "
                "edge_intensity is NaN there (probability and present are not affected)")

    @property
    def spectra_per_second(self) -> float:
        """End-to-end throughput of this run."""
        return self.spectra / self.seconds if self.seconds > 0 else float("nan")

    def invalid_text(self) -> str | None:
        """One line on the pixels that could not be judged, or None where every pixel was."""
        if not self.invalid_pixels:
            return None
        return (f"{self.invalid_pixels} of {self.pixels} pixels not judged (too few finite channels on the model grid): "
                "their maps are empty (the 'valid' map is False there)")

    def found_text(self) -> str:
        """The elements found, each with the elements it cannot be told from in this window: ``Co (or Ba), O``."""
        return describe_found(self.elements_found, self.alternatives)


SOURCE_IDENTITY_ATTR = "source_identity"  # the instrument file a converted input was made from: path, size, mtime


def source_identity(source: Path) -> str:
    """What ties a converted input to its instrument file: resolved path, size and modification time."""
    stat = source.stat()
    return json.dumps({"path": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def input_store_for(source: Path, output: Path, resume: bool = False) -> Path:
    """``source`` if it is a store; otherwise the instrument file converted beside the output.

    A converted input is reused only while it is that file's (same path, size and modification time); otherwise it
    is converted again, or, when resuming a map of it, refused: the maps begun would be of another file.
    """
    if source.is_dir():
        return source
    if not source.is_file():
        raise InputError(source, "no such file or store")
    converted = output.with_name(output.name + ".input.zarr")
    identity = source_identity(source)
    if is_complete(converted):
        recorded = zarr.open_group(str(converted), mode="r").attrs.get(SOURCE_IDENTITY_ATTR)
        if recorded == identity:
            return converted
        if resume:
            raise StoreError(source, f"cannot resume: {converted.name} was converted from another file or an "
                                 "earlier version of this one (use --overwrite to start again)")
    counts = open_spectrum_image(source)
    counts.attrs[SOURCE_IDENTITY_ATTR] = identity
    write_store(counts, converted, overwrite=True)
    return converted


@dataclass
class MapPlan:
    """A map checked and ready to run (:func:`prepare_map`): nothing of it depends on the cluster."""

    source: Path
    output: Path
    model_path: Path
    recogniser: Recogniser
    store: Path
    store_id: str | None
    energy: np.ndarray
    counts: xr.DataArray
    threshold: float
    sector_starts: list[int] | None
    warning: str | None
    intensity_windows: dict[int, IntegrationWindow]  # element index -> default windows (none found beside it)
    resume: bool
    expect: list[str] = field(default_factory=list)  # an analyst's priors (eelsbatch.model._priors)
    exclude: list[str] = field(default_factory=list)

    @property
    def odds(self) -> np.ndarray | None:
        """Prior odds factors per element, or None without priors."""
        return prior_odds(self.recogniser.elements, self.expect, self.exclude)


def prepare_map(
    source: str | Path,
    output: str | Path,
    model_path: str | Path,
    threshold: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    sector_starts: Sequence[int] | None = None,
    expect: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> MapPlan:
    """Check every argument of a map (and convert an instrument file) before any worker starts.

    Parameters are those of :func:`run_map`; ``expect`` and ``exclude`` name elements an analyst knows to be in
    or not in the specimen, used as priors (:mod:`eelsbatch.model._priors`), not as a filter.

    Raises
    ------
    EelsbatchError
        A missing or unreadable input or model, an output that exists (without ``resume`` or ``overwrite``) or
        that is not an eelsbatch store, a resume of another input or model, a window off the model grid.
    """
    from eelsbatch.model import load_recogniser  # torch: only once a map is asked for

    source, output, model_path = Path(source), Path(output), Path(model_path)
    recogniser = load_recogniser(model_path)
    expect, exclude, _ = analyst_priors(recogniser.elements, expect, exclude)
    threshold = recogniser.threshold if threshold is None else threshold
    resuming = resume and output.exists()
    if not resuming:
        prepare_output(output, overwrite)
    store = input_store_for(source, output, resuming)
    dataset = open_store(store)
    counts = dataset["counts"]
    energy = counts["energy"].values
    try:
        sector_starts = chosen_sector_starts(sector_starts, dataset.attrs.get(SECTOR_STARTS_ATTR), energy.size)
    except ValueError as error:
        raise InputError(source, str(error)) from None
    try:
        recogniser.inputs(np.ones((1, energy.size), np.float32), energy)  # refuses a window off the model grid
    except EelsbatchError as error:
        raise InputError(source, error.problem) from None
    identity = store_id(store)
    if resuming and not is_complete(output):
        attrs = zarr.open_group(str(output), mode="r").attrs
        same_input = attrs.get("input_store") == str(store.resolve()) and attrs.get("input_store_id", "") == (identity or "")
        if attrs.get("model_sha256") != recogniser.sha256 or not same_input:
            raise StoreError(output, "cannot resume: it was started with another input or model (use --overwrite)")
        begun = json.loads(attrs.get("parameters", "{}"))
        if (begun.get("expect", []), begun.get("exclude", [])) != (expect, exclude):
            raise StoreError(output, "cannot resume: it was started with other expected or excluded elements "
                                 "(use --overwrite)")
    windows = default_windows(energy, recogniser.elements)
    return MapPlan(source, output, model_path, recogniser, store, identity, energy, counts, threshold, sector_starts,
                   recogniser.acquisition_warning(energy), windows, resuming, expect, exclude)


def execute_map(plan: MapPlan, client: Client, progress: bool = True) -> MapSummary:
    """Run a prepared map on ``client``'s workers: the unfinished blocks, then the finish, one progress bar for both.

    The finish is one pass over the blocks on the workers (:func:`finish_chunk`): the classic maps of found elements
    whose windows must move clear of other found elements' edges measured again, those of elements found nowhere
    blanked; then the sums and attributes (:func:`finish_maps_store`).
    """
    all_blocks = blocks(plan.counts)
    output, recogniser = plan.output, plan.recogniser
    if plan.resume and is_complete(output):
        return _summary_of_finished(output, len(all_blocks), plan.warning)
    if not plan.resume:
        remove_store(output)  # prepare_map let it be replaced: an eelsbatch store, or an empty folder
        parameters = {"threshold": plan.threshold, "source": str(plan.source), "sector_starts": plan.sector_starts,
                      "warning": plan.warning, "expect": plan.expect, "exclude": plan.exclude}
        create_maps_store(output, plan.counts, recogniser.elements,
                          provenance(plan.store, plan.store_id, recogniser, plan.threshold, parameters))
    done = done_blocks(output)
    pending = [i for i in range(len(all_blocks)) if not done[i]]
    started = time.perf_counter()
    timings = {"read": 0.0, "inference": 0.0, "write": 0.0}
    spectra = 0
    elements = recogniser.elements
    with tqdm(total=len(pending) + len(all_blocks), desc="map", unit="block", disable=not progress) as bar:
        if pending:
            client.register_plugin(ModelPlugin(str(plan.model_path.resolve()), recogniser.sha256))
        futures = [client.submit(map_chunk, str(plan.store), str(output), recogniser.sha256, all_blocks[i], i,
                                 plan.threshold, plan.intensity_windows, plan.sector_starts, plan.odds,
                                 pure=False, retries=2)
                   for i in pending]
        for future in as_completed(futures):
            result = future.result()
            spectra += int(result.pop("spectra"))
            for key, value in result.items():
                timings[key] += value
            bar.update()
        bar.set_description("map: finishing")
        finishing = time.perf_counter()
        present_pixels, invalid, pixels = pixel_tallies(output)
        found = found_elements(present_pixels, pixels, elements)
        alternatives = found_alternatives(found, plan.energy, elements)
        windows = found_windows(found, plan.energy, elements)
        moved = {i: w for i, w in windows.items() if w != plan.intensity_windows.get(i)}
        absent = [i for i, e in enumerate(elements) if e not in found and i in plan.intensity_windows]
        finishes = [client.submit(finish_chunk, str(plan.store), str(output), block, moved, absent, pure=False, retries=2)
                    for block in all_blocks]
        for future in as_completed(finishes):
            future.result()
            bar.update()
        finish_maps_store(output, found, alternatives, invalid,
                          {elements[i]: None if w is None else w.to_dict() for i, w in windows.items()})
        timings["finish"] = time.perf_counter() - finishing
    seconds = time.perf_counter() - started
    unmeasured = sorted(elements[i] for i, w in windows.items() if w is None and i in plan.intensity_windows)
    return MapSummary(spectra, seconds, found, len(pending), len(all_blocks), timings, plan.warning, alternatives,
                      invalid, pixels, unmeasured)


def run_map(
    source: str | Path,
    output: str | Path,
    model_path: str | Path,
    client: Client,
    threshold: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    sector_starts: Sequence[int] | None = None,
    expect: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> MapSummary:
    """Map every pixel of ``source`` into the maps store ``output``.

    Parameters
    ----------
    source
        Spectrum-image store (from ``convert`` or ``synth --spectrum-image``) or instrument file.
    output
        Maps store to write.
    model_path
        Model folder.
    client
        Dask client whose workers do the per-chunk work.
    threshold
        Presence threshold (default: the model's).
    resume
        Continue an interrupted run into ``output``, computing only unfinished chunks (and finishing it).
    overwrite
        Replace an existing ``output`` (an eelsbatch store or an empty folder; anything else is refused).
    progress
        Show a progress bar.
    sector_starts
        Channels where the detector's readout sectors start (default: the input store's record of them,
        from ``convert --sector-starts``, else 2 or 4 equal shares of the channels).
    expect, exclude
        Elements an analyst knows to be in or not in the specimen: priors, not a filter (:mod:`eelsbatch.model._priors`).
    """
    plan = prepare_map(source, output, model_path, threshold, resume, overwrite, sector_starts, expect, exclude)
    return execute_map(plan, client, progress)


def _summary_of_finished(output: Path, total: int, warning: str | None) -> MapSummary:
    group = zarr.open_group(str(output), mode="r")
    attrs = group.attrs
    return MapSummary(0, 0.0, json.loads(attrs.get("elements_found", "[]")), 0, total, warning=warning,
                      alternatives=json.loads(attrs.get("alternatives", "{}")), invalid_pixels=int(attrs.get("invalid_pixels", 0)),
                      pixels=int(np.prod(group["valid"].shape)))
