"""Human-readable description of an instrument file or an eelsbatch store (``eelsbatch info``)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from eelsbatch.errors import InputError
from eelsbatch.io._reader import list_signals, open_spectrum_image
from eelsbatch.io._store import COMPLETE_ATTR, KIND_ATTR, _group
from eelsbatch.readout import SECTOR_STARTS_ATTR

ACQUISITION_ATTRS = ("beam_energy_keV", "convergence_angle_mrad", "collection_angle_mrad", "dispersion_eV")


def _describe_counts(counts: xr.DataArray) -> list[str]:
    energy = counts["energy"].values
    lines = [
        f"dims: {', '.join(f'{dim}={size}' for dim, size in counts.sizes.items())}",
        f"energy: {energy[0]:.3f} to {energy[-1]:.3f} eV, {energy.size} channels",
        f"dtype: {counts.dtype}",
    ]
    if counts.chunks:
        lines.append(f"chunks: {', '.join(f'{dim}={sizes[0]}' for dim, sizes in zip(counts.dims, counts.chunks))}")
    source = {**counts.attrs}
    lines += [f"{key}: {source[key]:.6g}" for key in ACQUISITION_ATTRS if key in source]
    if SECTOR_STARTS_ATTR in source:
        starts = source[SECTOR_STARTS_ATTR]
        lines.append(f"readout sectors start at channels: {', '.join(map(str, starts)) or 'none (one port)'}")
    return lines


def describe(path: str | Path) -> str:
    """Describe ``path``, an instrument file or a Zarr store, in a few lines of text.

    Parameters
    ----------
    path
        Instrument file or store folder.

    Returns
    -------
    str
        Dims, shape, energy range and dispersion, dtype, chunking, acquisition metadata, and for a
        store whether it is complete (an incomplete store is described, not refused).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or store")
    if path.is_dir():
        attrs = dict(_group(path, "r").attrs)
        complete = bool(attrs.get(COMPLETE_ATTR, False))
        lines = [f"{path}: eelsbatch store ({attrs.get(KIND_ATTR, 'unknown kind')}), "
                 f"{'complete' if complete else 'NOT complete (interrupted or being written)'}"]
        dataset = xr.open_zarr(str(path), consolidated=False)
        lines.append(f"variables: {', '.join(str(name) for name in dataset.data_vars)}")
        if "counts" in dataset:
            counts = dataset["counts"]
            counts.attrs = attrs
            lines += _describe_counts(counts)
        if "source_file" in attrs:
            lines.append(f"source_file: {attrs['source_file']}")
        return "\n".join(lines)
    signals = list_signals(path)
    lines = [f"{path}: {len(signals)} signal(s)"]
    lines += [
        f"  [{s.index}] {s.title or 'untitled'} ({s.signal_type or 'untyped'}) shape {s.shape}"
        + (f", {s.energy_range_eV[0]:.2f} to {s.energy_range_eV[1]:.2f} eV" if s.energy_range_eV else "")
        + (" EELS" if s.is_eels else "")
        for s in signals
    ]
    counts = open_spectrum_image(path)
    lines.append(f"default signal: [{counts.attrs['signal_index']}] {counts.attrs['signal_title']}")
    lines += _describe_counts(counts)
    return "\n".join(lines)
