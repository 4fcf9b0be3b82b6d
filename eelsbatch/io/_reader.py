"""Read EELS spectra and spectrum images from instrument files with RosettaSciIO, lazily."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rsciio
import xarray as xr

from eelsbatch.errors import EelsbatchError, InputError

ENERGY_UNITS_TO_EV = {"ev": 1.0, "kev": 1000.0}
LOW_LOSS_LIMIT_EV = 50.0
MIN_CHANNELS = 2  # fewer channels give no dispersion, no edge and nothing to map
# The EMSA/MAS standard's required keywords, less FORMAT (the MSA reader sets that one itself).
MSA_REQUIRED_KEYWORDS = frozenset(
    {"VERSION", "TITLE", "DATE", "TIME", "OWNER", "NPOINTS", "NCOLUMNS", "XUNITS", "YUNITS", "DATATYPE", "XPERCHAN", "OFFSET"}
)


@dataclass(frozen=True)
class SignalSummary:
    """One signal of an instrument file, as ``info`` lists it."""

    index: int
    title: str
    signal_type: str
    shape: tuple[int, ...]
    energy_range_eV: tuple[float, float] | None
    channels: int  # of the energy axis; 0 where there is none

    @property
    def is_eels(self) -> bool:
        """True where the signal has a usable energy-loss axis and is not an EDS (X-ray) signal."""
        return self.channels >= MIN_CHANNELS and "EDS" not in self.signal_type.upper()


def _plugins_for(path: Path) -> list[dict[str, Any]]:
    extension = path.suffix.lstrip(".").lower()
    return [
        plugin
        for plugin in rsciio.IO_PLUGINS
        if extension in (known.lower() for known in plugin["file_extensions"])
    ]


class _ReadFailure(Exception):
    """Why one reader could not read a file (each plugin's reason is reported together)."""


class _ReaderLog(logging.Handler):
    """Keeps the errors a reader logs; passes anything milder on to RosettaSciIO's own handlers."""

    def __init__(self, passed_on: list[logging.Handler]) -> None:
        super().__init__()
        self.errors: list[str] = []
        self.passed_on = passed_on

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())
            return
        for handler in self.passed_on:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextlib.contextmanager
def _reader_errors() -> Iterator[list[str]]:
    """Collect, instead of printing, the errors that RosettaSciIO readers log and then carry on from.

    The MSA reader logs a keyword value it cannot parse (with three chained tracebacks, to stdout) and goes on to
    return a signal holding the unparsed text; such a read has failed, and one line must say why.
    """
    logger = logging.getLogger("rsciio")
    handlers, propagate = logger.handlers[:], logger.propagate
    collector = _ReaderLog(handlers)
    logger.handlers, logger.propagate = [collector], False
    try:
        yield collector.errors
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def _first_line(text: str) -> str:
    """The first line of a reader's message, its runs of whitespace collapsed."""
    lines = text.strip().splitlines()
    return " ".join(lines[0].split()) if lines else ""


def _msa_problem(signals: list[dict[str, Any]]) -> str | None:
    """The MSA reader skips every line it does not know, so any text (or noise) reads as an empty spectrum:
    a file without any of the standard's required keywords is not MSA."""
    if any(MSA_REQUIRED_KEYWORDS & set(signal.get("original_metadata", {})) for signal in signals):
        return None
    return "no EMSA/MAS header (none of #NPOINTS, #XUNITS, #DATATYPE, ...)"


# Readers that accept files of another format without an error, and how to tell that they did.
FORMAT_CHECKS: dict[str, Callable[[list[dict[str, Any]]], str | None]] = {"MSA": _msa_problem}


def _read_with(plugin: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """All signals of ``path`` read by one RosettaSciIO plugin, lazily where it allows; ``_ReadFailure`` if it cannot."""
    try:
        reader = importlib.import_module(plugin["api"]).file_reader
    except ImportError as error:  # a reader whose optional dependency is missing (USID needs pyUSID)
        raise _ReadFailure(f"reader not installed ({error})") from None
    with _reader_errors() as logged:
        try:
            try:
                signals = reader(str(path), lazy=True)
            except NotImplementedError:  # some readers (MSA) read eagerly only: small text formats
                signals = reader(str(path))
        except Exception as error:  # noqa: BLE001 - any reader failure means the file is not of its format
            said = _first_line(str(error))
            raise _ReadFailure(f"{error.__class__.__name__}{': ' + said if said else ''}") from None
    if logged:
        raise _ReadFailure(_first_line(logged[0]))
    problem = FORMAT_CHECKS.get(plugin["name"], lambda _: None)(signals)
    if problem:
        raise _ReadFailure(problem)
    return signals


def _read_signals(path: Path) -> list[dict[str, Any]]:
    """All signals in ``path`` as RosettaSciIO dicts, from the first plugin for its extension that reads it.

    An extension can belong to several plugins (``.hdf5``: Delmic, USID and HSPY): each is tried in RosettaSciIO's
    order, and only where none reads the file is it refused, with every plugin's reason.
    """
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, not an instrument file or an eelsbatch store")
    plugins = _plugins_for(path)
    if not plugins:
        raise InputError(path, f"unsupported file extension {path.suffix!r} (no RosettaSciIO reader for it)")
    problems = []
    for plugin in plugins:
        try:
            return _read_with(plugin, path)
        except _ReadFailure as failure:
            problems.append(f"{plugin['name']}: {failure}")
    names = [plugin["name"] for plugin in plugins]
    formats = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    raise InputError(path, f"cannot be read as {formats}: another format, truncated or corrupt ({'; '.join(problems)})")


def _energy_axis_index(axes: list[dict[str, Any]]) -> int | None:
    """The axis in energy units (eV or keV); never chosen by position or by the navigate flag."""
    energy = [i for i, axis in enumerate(axes) if str(axis.get("units") or "").strip().lower() in ENERGY_UNITS_TO_EV]
    if len(energy) > 1:  # several energy-like axes: the signal axis is the one not navigated
        energy = [i for i in energy if not axes[i].get("navigate", False)] or energy[-1:]
    return energy[0] if energy else None


def _axis_values(axis: dict[str, Any]) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=float)
    return float(axis.get("offset", 0.0)) + float(axis.get("scale", 1.0)) * np.arange(int(axis["size"]))


def _summarise(index: int, signal: dict[str, Any]) -> SignalSummary:
    axes = signal["axes"]
    energy_index = _energy_axis_index(axes)
    values = np.empty(0)
    if energy_index is not None:
        factor = ENERGY_UNITS_TO_EV[str(axes[energy_index]["units"]).strip().lower()]
        values = _axis_values(axes[energy_index]) * factor
    metadata = signal.get("metadata", {})
    return SignalSummary(
        index=index,
        title=str(metadata.get("General", {}).get("title", "")),
        signal_type=str(metadata.get("Signal", {}).get("signal_type", "") or ""),
        shape=tuple(int(n) for n in signal["data"].shape),
        energy_range_eV=(float(values[0]), float(values[-1])) if values.size else None,
        channels=int(values.size),
    )


def list_signals(path: str | Path) -> list[SignalSummary]:
    """List the signals of an instrument file.

    Parameters
    ----------
    path
        Any file RosettaSciIO reads.

    Returns
    -------
    list of SignalSummary
        One entry per signal, in file order, with its index for ``--signal``.
    """
    return [_summarise(i, signal) for i, signal in enumerate(_read_signals(Path(path)))]


def _signal_axes(signal: dict[str, Any]) -> int:
    """How many axes a signal is measured along: one for a spectrum (or spectrum image), two for an image."""
    return sum(not axis.get("navigate", False) for axis in signal["axes"])


def _choose_signal(path: Path, signals: list[dict[str, Any]], signal: str | int | None) -> int:
    summaries = [_summarise(i, s) for i, s in enumerate(signals)]
    listing = ", ".join(f"{s.index}: {s.title or '?'} ({s.signal_type or 'untyped'})" for s in summaries)
    if signal is not None:
        text = str(signal)
        matches = [s.index for s in summaries if text.isdigit() and s.index == int(text)] or [
            s.index for s in summaries if s.title == text
        ]
        if not matches:
            raise InputError(path, f"no signal {text!r}; signals are {listing}")
        if len(matches) > 1:
            raise InputError(path, f"several signals are titled {text!r}; choose by index: {listing}")
        return matches[0]
    eels = [s for s in summaries if s.is_eels]
    # No usable EELS signal, but one typed EELS or a spectrum that is not X-ray data: say what is wrong with it (its
    # energy axis is not in eV, or too short) rather than calling the file image-only.
    unusable = [s.index for s in summaries if "EELS" in s.signal_type.upper()] or [
        s.index for s in summaries if "EDS" not in s.signal_type.upper() and _signal_axes(signals[s.index]) == 1
    ]
    if not eels and unusable:
        signal_to_dataarray(path, signals[unusable[0]], unusable[0])
    if not eels:
        raise InputError(path, f"holds no EELS spectrum (image-only or X-ray data); signals are {listing}")
    # Several EELS signals (DualEELS, several ranges): default to the core-loss one starting lowest,
    # which holds the most edges.
    core_loss = [s for s in eels if s.energy_range_eV[0] >= LOW_LOSS_LIMIT_EV]
    return min(core_loss or eels, key=lambda s: s.energy_range_eV[0]).index


def _dim_names(path: Path, axes: list[dict[str, Any]], energy_index: int) -> list[str]:
    names: list[str] = []
    for i, axis in enumerate(axes):
        if i == energy_index:
            names.append("energy")
            continue
        name = re.sub(r"\W+", "_", str(axis.get("name") or "").strip().lower()).strip("_") or f"dim_{i}"
        if name == "energy" or name in names:
            name = f"{name}_{i}"
        names.append(name)
    return names


def _acquisition_attrs(metadata: dict[str, Any]) -> dict[str, float]:
    tem = metadata.get("Acquisition_instrument", {}).get("TEM", {})
    found = {
        "beam_energy_keV": tem.get("beam_energy"),
        "convergence_angle_mrad": tem.get("convergence_angle"),
        "collection_angle_mrad": tem.get("Detector", {}).get("EELS", {}).get("collection_angle"),
    }
    return {key: float(value) for key, value in found.items() if value is not None}


def _as_dask(data: Any) -> da.Array:
    return data if isinstance(data, da.Array) else da.from_array(data, chunks="auto")


def signal_to_dataarray(path: Path, signal: dict[str, Any], index: int) -> xr.DataArray:
    """Turn one RosettaSciIO signal dict into a lazy ``counts`` DataArray with ``energy`` last.

    Parameters
    ----------
    path
        The file it came from (named in errors and in the ``source_file`` attribute).
    signal
        The RosettaSciIO dict (``data``, ``axes``, ``metadata``, ``original_metadata``).
    index
        The signal's index in the file.
    """
    axes = signal["axes"]
    energy_index = _energy_axis_index(axes)
    title = str(signal.get("metadata", {}).get("General", {}).get("title", ""))
    if energy_index is None:
        units = sorted({str(axis.get("units") or "none") for axis in axes})
        raise InputError(
            path, f"signal {index} ({title or 'untitled'}) has no energy axis in eV (axis units: {', '.join(units)})"
        )
    energy_axis = axes[energy_index]
    factor = ENERGY_UNITS_TO_EV[str(energy_axis["units"]).strip().lower()]
    energy = _axis_values(energy_axis) * factor
    if energy.size < MIN_CHANNELS:
        raise InputError(
            path, f"signal {index} ({title or 'untitled'}): energy axis has {energy.size} channel(s); at least {MIN_CHANNELS} needed"
        )
    if not np.all(np.diff(energy) > 0):
        raise InputError(path, f"signal {index}: the energy axis is not monotonically increasing")
    names = _dim_names(path, axes, energy_index)
    coords: dict[str, Any] = {"energy": ("energy", energy, {"units": "eV", "long_name": "energy loss"})}
    for name, axis in zip(names, axes):
        if name != "energy":
            coords[name] = (name, _axis_values(axis), {"units": str(axis.get("units") or "")})
    counts = xr.DataArray(_as_dask(signal["data"]), dims=names, coords=coords, name="counts")
    counts = counts.transpose(*[n for n in names if n != "energy"], "energy")
    metadata = signal.get("metadata", {})
    if energy_axis.get("axis") is None:
        dispersion = float(energy_axis.get("scale", 1.0)) * factor
    else:
        dispersion = float(np.median(np.diff(energy)))
    counts.attrs = {
        **_acquisition_attrs(metadata),
        "dispersion_eV": dispersion,
        "source_file": str(path.resolve()),
        "signal_index": index,
        "signal_title": title,
        "signal_type": str(metadata.get("Signal", {}).get("signal_type", "") or ""),
        "original_metadata": json.dumps(signal.get("original_metadata", {}), default=str),
    }
    return counts


def open_spectrum_image(path: str | Path, signal: str | int | None = None) -> xr.DataArray:
    """Open an EELS spectrum, spectrum image or eelsbatch store lazily.

    Parameters
    ----------
    path
        An instrument file that RosettaSciIO reads (.dm3, .dm4, .emd, .hspy, .zspy, .msa, .emi, ...)
        or a Zarr store written by ``eelsbatch convert``.
    signal
        For files holding several signals: index or title (default: the first core-loss EELS signal).

    Returns
    -------
    xarray.DataArray
        ``counts`` with navigation dims first and ``energy`` (eV) last, backed by dask.

    Raises
    ------
    EelsbatchError
        Missing, unsupported or corrupt file, no EELS signal, or an energy axis not in eV, of fewer than
        ``MIN_CHANNELS`` channels or not increasing.
    """
    path = Path(path)
    if path.is_dir():
        from eelsbatch.io._store import open_store

        dataset = open_store(path)
        return dataset["counts"].assign_attrs(dataset.attrs)  # the acquisition metadata, as from a file
    signals = _read_signals(path)
    index = _choose_signal(path, signals, signal)
    return signal_to_dataarray(path, signals[index], index)
