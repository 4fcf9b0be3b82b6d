"""Run ``map`` over a whole spectrum image on a Dask client: resumable, retried, marked complete at the end."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr
from distributed import Client, as_completed
from tqdm import tqdm

from eelsbatch.errors import EelsbatchError
from eelsbatch.io import is_complete, open_spectrum_image, open_store, prepare_output, write_store
from eelsbatch.mapping._alternatives import describe_found, found_alternatives
from eelsbatch.mapping._chunk import map_chunk
from eelsbatch.mapping._intensity import integration_onset
from eelsbatch.mapping._layout import blocks, create_maps_store, finish_maps_store, provenance
from eelsbatch.readout import SECTOR_STARTS_ATTR, chosen_sector_starts

FOUND_SHARE = 0.01  # an element is "found" where present in at least 1 % of the pixels (or the only spectrum)


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

    @property
    def spectra_per_second(self) -> float:
        """End-to-end throughput of this run."""
        return self.spectra / self.seconds if self.seconds > 0 else float("nan")

    def found_text(self) -> str:
        """The elements found, each with the elements it cannot be told from in this window: ``Co (or Ba), O``."""
        return describe_found(self.elements_found, self.alternatives)


def input_store_for(source: Path, output: Path) -> Path:
    """``source`` if it is a store; otherwise convert the instrument file beside the output first."""
    if source.is_dir():
        return source
    converted = output.with_name(output.name + ".input.zarr")
    if not is_complete(converted):
        write_store(open_spectrum_image(source), converted, overwrite=True)
    return converted


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
        Continue an interrupted run into ``output``, computing only unfinished chunks.
    overwrite
        Replace an existing ``output``.
    progress
        Show a progress bar.
    sector_starts
        Channels where the detector's readout sectors start (default: the input store's record of them,
        from ``convert --sector-starts``, else 2 or 4 equal shares of the channels).
    """
    from eelsbatch.model import load_recogniser

    source, output = Path(source), Path(output)
    recogniser = load_recogniser(model_path)
    threshold = recogniser.threshold if threshold is None else threshold
    if not (resume and output.exists()):
        prepare_output(output, overwrite)
    store = input_store_for(source, output)
    dataset = open_store(store)
    counts = dataset["counts"]
    energy = counts["energy"].values
    try:
        sector_starts = chosen_sector_starts(sector_starts, dataset.attrs.get(SECTOR_STARTS_ATTR), energy.size)
    except ValueError as error:
        raise EelsbatchError(source, str(error)) from None
    try:
        recogniser.inputs(np.ones((1, energy.size), np.float32), energy)  # refuses a window off the model grid
    except EelsbatchError as error:
        raise EelsbatchError(source, error.problem) from None
    warning = recogniser.acquisition_warning(energy)
    onsets = {e: o for e in recogniser.elements if (o := integration_onset(e, energy)) is not None}
    all_blocks = blocks(counts)
    if resume and output.exists():
        if is_complete(output):
            return _summary_of_finished(output, len(all_blocks), warning)
        attrs = zarr.open_group(str(output), mode="r").attrs
        if attrs.get("model_sha256") != recogniser.sha256 or attrs.get("input_store") != str(store.resolve()):
            raise EelsbatchError(output, "cannot resume: it was started with another input or model (use --overwrite)")
    else:
        if output.exists():
            shutil.rmtree(output)
        parameters = {"threshold": threshold, "source": str(source), "sector_starts": sector_starts, "warning": warning}
        create_maps_store(output, counts, recogniser.elements, provenance(store, recogniser, threshold, parameters))
    done = zarr.open_group(str(output), mode="r")["chunk_done"][:]
    pending = [i for i in range(len(all_blocks)) if not done[i]]
    started = time.perf_counter()
    futures = [
        client.submit(map_chunk, str(store), str(output), str(Path(model_path).resolve()), recogniser.sha256,
                      all_blocks[i], i, threshold, onsets, sector_starts, pure=False, retries=2)
        for i in pending
    ]
    timings = {"read": 0.0, "inference": 0.0, "write": 0.0}
    spectra = 0
    with tqdm(total=len(futures), desc="map", unit="chunk", disable=not progress) as bar:
        for future in as_completed(futures):
            result = future.result()
            spectra += int(result.pop("spectra"))
            for key, value in result.items():
                timings[key] += value
            bar.update()
    seconds = time.perf_counter() - started
    found = elements_found(output, recogniser.elements)
    alternatives = found_alternatives(found, energy, recogniser.elements)
    finish_maps_store(output, found, alternatives)
    return MapSummary(spectra, seconds, found, len(pending), len(all_blocks), timings, warning, alternatives)


def elements_found(output: Path, elements: list[str]) -> list[str]:
    """Elements present in at least ``FOUND_SHARE`` of the pixels, read one element at a time."""
    present = zarr.open_group(str(output), mode="r")["present"]
    found = []
    for index, element in enumerate(elements):
        share = float(np.mean(present[index]))
        if share >= FOUND_SHARE and share > 0:
            found.append(element)
    return found


def _summary_of_finished(output: Path, total: int, warning: str | None) -> MapSummary:
    import json

    attrs = zarr.open_group(str(output), mode="r").attrs
    return MapSummary(0, 0.0, json.loads(attrs.get("elements_found", "[]")), 0, total, warning=warning,
                      alternatives=json.loads(attrs.get("alternatives", "{}")))
