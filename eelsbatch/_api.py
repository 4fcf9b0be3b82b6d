"""The Python API: open spectra, load a model, identify the edges in every spectrum, hand maps to HyperSpy.

``identify`` runs the per-block kernel (:mod:`eelsbatch.mapping._kernel`) through ``xarray.apply_ufunc``: eagerly on
in-memory data, lazily (``dask="parallelized"``) on dask-backed data, on whatever scheduler is active (threads, a
``distributed.Client``, or none). It gives the maps that ``eelsbatch map`` writes for the same spectra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from eelsbatch.errors import InputError

if TYPE_CHECKING:
    from eelsbatch.model import Recogniser

ENERGY = "energy"
RECOGNISED = ("probability", "present", "onset_energy", "valid")


def open(path: str | Path, signal: str | int | None = None) -> xr.DataArray:  # noqa: A001 - the API's verb
    """An instrument file (any EELS file RosettaSciIO reads) or eelsbatch store as a lazy ``counts`` DataArray.

    Navigation dims come first and ``energy`` (eV) last, backed by dask; acquisition metadata are attributes.
    ``signal`` picks one signal of a multi-signal file (index or title; default the core-loss EELS one).
    """
    from eelsbatch.io import open_spectrum_image

    return open_spectrum_image(path, signal=signal)


def load_model(name_or_path: str | Path | None = None) -> Recogniser:
    """A recogniser: the shipped model (default, or by its name, e.g. ``"edgenet-v9"``) or a model folder."""
    from eelsbatch.model import load_recogniser
    from eelsbatch.shipped import SHIPPED_MODEL

    if name_or_path is None or str(name_or_path) == SHIPPED_MODEL.name:
        return load_recogniser(SHIPPED_MODEL)
    return load_recogniser(name_or_path)


def as_spectra(data: Any, energy: Sequence[float] | np.ndarray | None = None) -> xr.DataArray:
    """``data`` as a DataArray of spectra with ``energy`` (eV) last: a DataArray with an ``energy`` dim, a HyperSpy
    signal (its signal axis in eV or keV), or an array (numpy or dask) whose last axis is given by ``energy``."""
    if isinstance(data, xr.DataArray):
        if ENERGY not in data.dims or ENERGY not in data.coords:
            raise InputError(None, "the DataArray needs an 'energy' dim with its coordinate in eV")
        if energy is not None:
            raise InputError(None, "energy is given twice: by the DataArray's coordinate and by the energy argument")
        return data.transpose(..., ENERGY)
    if hasattr(data, "axes_manager"):
        return _from_hyperspy(data)
    if energy is None:
        raise InputError(None, "an array of spectra needs its channels' energies (energy=...) in eV")
    values = data if hasattr(data, "dask") else np.asarray(data)
    energy = np.asarray(energy, dtype=np.float64)
    if values.ndim < 1 or values.shape[-1] != energy.size:
        raise InputError(None, f"the last axis of the spectra ({values.shape[-1] if values.ndim else 0} channels) "
                         f"does not match energy ({energy.size} values)")
    dims = [f"dim_{i}" for i in range(values.ndim - 1)] + [ENERGY]
    return xr.DataArray(values, dims=dims, coords={ENERGY: (ENERGY, energy, {"units": "eV"})}, name="counts")


def _from_hyperspy(signal: Any) -> xr.DataArray:
    from eelsbatch.io._reader import ENERGY_UNITS_TO_EV

    axes = signal.axes_manager
    if len(axes.signal_axes) != 1:
        raise InputError(None, f"a HyperSpy signal of spectra has one signal axis, not {len(axes.signal_axes)}")
    axis = axes.signal_axes[0]
    factor = ENERGY_UNITS_TO_EV.get(str(axis.units).strip().lower())
    if factor is None:
        raise InputError(None, f"the signal axis is in {axis.units!r}, not eV")
    navigation = list(reversed(axes.navigation_axes))  # HyperSpy lists x before y; the data holds y before x
    names = [str(a.name) if a.name and str(a.name) != "<undefined>" else f"dim_{i}" for i, a in enumerate(navigation)]
    coords = {name: (name, np.asarray(a.axis), {"units": str(a.units)}) for name, a in zip(names, navigation)}
    coords[ENERGY] = (ENERGY, np.asarray(axis.axis, dtype=np.float64) * factor, {"units": "eV"})
    return xr.DataArray(signal.data, dims=[*names, ENERGY], coords=coords, name="counts",
                        attrs={"signal_title": str(signal.metadata.get_item("General.title", ""))})


def identify(data: Any, model: Recogniser | str | Path | None = None, energy: Sequence[float] | np.ndarray | None = None,
             threshold: float | None = None, sector_starts: Sequence[int] | None = None, expect: Sequence[str] = (),
             exclude: Sequence[str] = ()) -> xr.Dataset:
    """The elements in every spectrum of ``data``: probabilities, presence, onsets and classic edge-intensity maps.

    Parameters
    ----------
    data
        Spectra: a DataArray with an ``energy`` dim (numpy- or dask-backed; from :func:`open` or your own), a HyperSpy
        signal, or an array whose last axis is ``energy``.
    model
        A recogniser (:func:`load_model`), a model folder or name; default the shipped model.
    energy
        The channels' energies in eV, for a plain array.
    threshold
        Presence threshold (default: the model's).
    sector_starts
        Channels where the detector's readout sectors start (default: the data's ``readout_sector_starts``
        attribute, else 2 or 4 equal shares of the channels).
    expect, exclude
        Elements you know to be in, or not in, the specimen: priors on the odds, not a filter
        (:mod:`eelsbatch.model._priors`).

    Returns
    -------
    xarray.Dataset
        ``probability``, ``present``, ``onset_energy`` (eV) and ``edge_intensity`` (counts) with dims
        ``(element, *navigation)``, and ``valid`` (navigation): as ``eelsbatch map`` writes them. Lazy for
        dask-backed data: the recognition per block, the classic maps after the elements found over all pixels.
    """
    from eelsbatch.mapping._kernel import found_elements, found_windows, intensity_block, recognise_block
    from eelsbatch.model._priors import analyst_priors
    from eelsbatch.readout import SECTOR_STARTS_ATTR, chosen_sector_starts

    spectra = as_spectra(data, energy)
    recogniser = model if hasattr(model, "predict") else load_model(model)
    axis = spectra[ENERGY].values
    threshold = recogniser.threshold if threshold is None else threshold
    try:
        starts = chosen_sector_starts(sector_starts, spectra.attrs.get(SECTOR_STARTS_ATTR), axis.size)
    except ValueError as error:
        raise InputError(None, str(error)) from None
    recogniser.inputs(np.ones((1, axis.size), np.float32), axis)  # a window off the model grid: one clear error
    elements = recogniser.elements
    expect, exclude, odds = analyst_priors(elements, expect, exclude)
    if spectra.chunks is not None:  # whole spectra in each block: the kernel reads along energy
        spectra = spectra.chunk({ENERGY: -1})

    def recognise(counts: np.ndarray) -> tuple[np.ndarray, ...]:
        maps = recognise_block(counts, axis, recogniser, threshold, starts, odds)
        return tuple(maps[name] for name in RECOGNISED)

    probability, present, onset, valid = xr.apply_ufunc(
        recognise, spectra, input_core_dims=[[ENERGY]], output_core_dims=[["element"]] * 3 + [[]],
        dask="parallelized", output_dtypes=[np.float32, bool, np.float32, bool],
        dask_gufunc_kwargs={"output_sizes": {"element": len(elements)}},
    )
    navigation = [dim for dim in spectra.dims if dim != ENERGY]
    pixels = int(np.prod([spectra.sizes[d] for d in navigation]))
    present_pixels = present.sum(dim=navigation)

    def intensity(counts: np.ndarray, tallies: np.ndarray, judged: np.ndarray) -> np.ndarray:
        found = found_elements(tallies, pixels, elements)
        return intensity_block(counts, axis, found_windows(found, axis, elements), len(elements), judged)

    edge_intensity = xr.apply_ufunc(
        intensity, spectra, present_pixels, valid, input_core_dims=[[ENERGY], ["element"], []],
        output_core_dims=[["element"]], dask="parallelized", output_dtypes=[np.float32],
    )
    coords = {"element": ("element", np.array(elements, dtype=object))}
    maps = xr.Dataset({"probability": probability, "present": present, "onset_energy": onset,
                       "edge_intensity": edge_intensity}, coords=coords)
    maps = maps.transpose("element", *navigation)
    maps["valid"] = valid
    maps["onset_energy"].attrs["units"] = "eV"
    maps["edge_intensity"].attrs["units"] = "counts"
    maps.attrs = {"model_name": recogniser.name, "model_sha256": recogniser.sha256, "threshold": threshold,
                  "expect": expect, "exclude": exclude}
    if warning := recogniser.acquisition_warning(axis):
        maps.attrs["warning"] = warning
    return maps


def to_hyperspy(maps: xr.Dataset) -> dict[str, Any]:
    """Each map variable of ``maps`` (from :func:`identify` or a maps store) as a HyperSpy signal: the element along
    the navigation axis (``metadata.Sample.elements`` names them), the image dims as signal axes.

    Raises
    ------
    InputError
        Where HyperSpy is not installed (``pip install hyperspy``).
    """
    try:
        import hyperspy.api as hs
    except ImportError:
        raise InputError(None, "to_hyperspy needs HyperSpy (pip install hyperspy)") from None
    signals = {}
    for name in ("probability", "present", "onset_energy", "edge_intensity"):
        variable = maps[name].transpose("element", ...)
        signal = hs.signals.Signal2D(np.asarray(variable.values)) if variable.ndim >= 3 else \
            hs.signals.Signal1D(np.asarray(variable.values))
        image_dims = list(variable.dims[1:])
        for axis, dim in zip(signal.axes_manager.signal_axes, reversed(image_dims)):
            values = np.asarray(variable[dim].values, dtype=float) if dim in variable.coords else None
            axis.name = dim
            if values is not None and values.size > 1:
                axis.offset, axis.scale = float(values[0]), float(values[1] - values[0])
                axis.units = str(variable[dim].attrs.get("units", ""))
        signal.axes_manager.navigation_axes[0].name = "element"
        signal.metadata.General.title = name
        signal.metadata.set_item("Sample.elements", [str(e) for e in variable["element"].values])
        signals[name] = signal
    return signals


@xr.register_dataarray_accessor("eels")
class EelsAccessor:
    """``spectra.eels.identify()``: :func:`identify` on a DataArray of spectra with an ``energy`` dim."""

    def __init__(self, spectra: xr.DataArray) -> None:
        self._spectra = spectra

    def identify(self, model: Recogniser | str | Path | None = None, threshold: float | None = None,
                 sector_starts: Sequence[int] | None = None, expect: Sequence[str] = (),
                 exclude: Sequence[str] = ()) -> xr.Dataset:
        """The maps of these spectra (:func:`identify`)."""
        return identify(self._spectra, model, threshold=threshold, sector_starts=sector_starts, expect=expect,
                        exclude=exclude)
