"""`eelsbatch convert` and `info` on every real instrument file, compared with RosettaSciIO's own reads."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from eelsbatch.io import COMPLETE_ATTR, is_complete, mark_incomplete, open_spectrum_image, open_store, write_store
from eelsbatch.errors import EelsbatchError

# file, reader module, index of the signal converted, expected dims/sizes, first energy (eV), dispersion (eV/ch),
# expected acquisition attributes
CASES = [
    ("EELS_SI.dm4", "rsciio.digitalmicrograph", 0, {"y": 2, "x": 2, "energy": 2048}, 300.0, 1.0, {}),
    ("test-EELS_spectrum.dm3", "rsciio.digitalmicrograph", 0, {"energy": 2048}, -100.0, 0.5, {}),
    ("16x16-spectrum_image-5x5x1024.emi", "rsciio.tia", 0, {"y": 5, "x": 5, "energy": 1024}, -20.0, 0.2, {}),
    ("lowloss_spectrum.msa", "rsciio.msa", 0, {"energy": 2048}, -40.0, 0.2, {}),
    (
        "Cr_L_ll.hspy", "rsciio.hspy", 0, {"energy": 2035}, -20.0, 0.1,
        {"beam_energy_keV": 200.0, "convergence_angle_mrad": 21.0, "collection_angle_mrad": 50.0},
    ),
    (
        "CuZn_EELS_mapping_tutorial.hspy", "rsciio.hspy", 0, {"y": 50, "x": 40, "energy": 162}, 700.0, 8.0,
        {"beam_energy_keV": 200.0, "convergence_angle_mrad": 29.0, "collection_angle_mrad": 36.0},
    ),
]


def _rsciio_array(module: str, path: Path, index: int) -> tuple[np.ndarray, list[dict]]:
    signal = importlib.import_module(module).file_reader(str(path))[index]
    return np.asarray(signal["data"]), signal["axes"]


def _in_our_order(data: np.ndarray, axes: list[dict]) -> np.ndarray:
    """RosettaSciIO's array with its eV axis moved last (the eV axis is found by units, as eelsbatch does)."""
    energy = [i for i, axis in enumerate(axes) if axis.get("units") == "eV"][0]
    return np.moveaxis(data, energy, -1)


@pytest.mark.parametrize(("name", "module", "index", "sizes", "start", "dispersion", "acquisition"), CASES)
def test_convert_matches_rosettasciio(
    instrument_dir: Path, tmp_path: Path, name, module, index, sizes, start, dispersion, acquisition
) -> None:
    source = instrument_dir / name
    store = write_store(open_spectrum_image(source), tmp_path / "out.zarr")
    dataset = open_store(store)
    counts = dataset["counts"]
    assert dict(counts.sizes) == sizes
    assert counts.dims[-1] == "energy"
    energy = dataset["energy"].values
    assert dataset["energy"].attrs["units"] == "eV"
    np.testing.assert_allclose(energy[:3], start + dispersion * np.arange(3), atol=1e-6)
    assert dataset.attrs["dispersion_eV"] == pytest.approx(dispersion)
    for key, value in acquisition.items():
        assert dataset.attrs[key] == pytest.approx(value)
    assert dataset.attrs["source_file"] == str(source.resolve())
    assert isinstance(json.loads(dataset.attrs["original_metadata"]), dict)
    expected, axes = _rsciio_array(module, source, index)
    np.testing.assert_array_equal(counts.values, _in_our_order(expected, axes))
    assert counts.dtype == expected.dtype
    for dim in counts.dims[:-1]:
        assert "units" in dataset[dim].attrs


def test_dm4_energy_axis_is_found_by_units_not_position(instrument_dir: Path) -> None:
    """RosettaSciIO gives EELS_SI.dm4 as (2048, 2, 2) with wrong navigate flags."""
    counts = open_spectrum_image(instrument_dir / "EELS_SI.dm4")
    assert counts.dims == ("y", "x", "energy")
    assert counts["y"].attrs["units"] == "µm"


def test_velox_defaults_to_core_loss_eels_and_signal_selects_another(velox_emd: Path, tmp_path: Path) -> None:
    counts = open_spectrum_image(velox_emd)
    assert dict(counts.sizes) == {"y": 16, "x": 20, "energy": 2048}
    assert counts["energy"].values[0] == pytest.approx(480.0)
    assert counts.attrs["dispersion_eV"] == pytest.approx(0.1692)
    from rsciio.emd import file_reader

    signals = file_reader(str(velox_emd))
    np.testing.assert_array_equal(counts.values, signals[15]["data"])
    result = _cli("convert", str(velox_emd), str(tmp_path / "low.zarr"), "--signal", "16")
    assert result.returncode == 0, result.stderr
    low = open_store(tmp_path / "low.zarr")
    assert low["energy"].values[0] == pytest.approx(-21.5026)
    np.testing.assert_array_equal(low["counts"].values, signals[16]["data"])


def test_chunks_hold_the_whole_energy_axis(instrument_dir: Path, tmp_path: Path) -> None:
    source = instrument_dir / "CuZn_EELS_mapping_tutorial.hspy"
    write_store(open_spectrum_image(source), tmp_path / "given.zarr", chunks=[10, 20])
    array = zarr.open_array(str(tmp_path / "given.zarr" / "counts"), mode="r")
    assert array.chunks == (10, 20, 162)
    assert array.compressors, "the store must be compressed"


def test_info_describes_files_and_stores(velox_emd: Path, instrument_dir: Path, tmp_path: Path) -> None:
    listing = _cli("info", str(velox_emd))
    assert listing.returncode == 0, listing.stderr
    assert "[15] EELS (EELS) shape (16, 20, 2048), 480.00 to 826.35 eV EELS" in listing.stdout
    assert "default signal: [15]" in listing.stdout
    store = tmp_path / "cuzn.zarr"
    assert _cli("convert", str(instrument_dir / "CuZn_EELS_mapping_tutorial.hspy"), str(store)).returncode == 0
    described = _cli("info", str(store)).stdout
    assert "complete" in described and "NOT complete" not in described
    assert "energy: 700.000 to 1988.000 eV, 162 channels" in described
    assert "beam_energy_keV: 200" in described
    mark_incomplete(store)
    assert "NOT complete" in _cli("info", str(store)).stdout


def test_a_finished_store_opens_with_plain_open_zarr(instrument_dir: Path, tmp_path: Path) -> None:
    """Its metadata is consolidated when it is marked complete: ``xr.open_zarr`` warns of nothing and sees what a
    read of every array's own metadata sees; the completeness marker stays live."""
    store = write_store(open_spectrum_image(instrument_dir / "EELS_SI.dm4"), tmp_path / "si.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(store)
    xr.testing.assert_identical(plain, xr.open_zarr(store, consolidated=False))
    assert plain.attrs[COMPLETE_ATTR] is True
    mark_incomplete(store)
    assert xr.open_zarr(store).attrs[COMPLETE_ATTR] is False


def test_incomplete_store_is_refused(instrument_dir: Path, tmp_path: Path) -> None:
    store = write_store(open_spectrum_image(instrument_dir / "EELS_SI.dm4"), tmp_path / "si.zarr")
    assert is_complete(store)
    mark_incomplete(store)
    with pytest.raises(EelsbatchError, match="not complete"):
        open_store(store)


# --- bad input: one line, exit code 2, no output store -------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", *args], capture_output=True, text=True, timeout=120)


def _write_hspy(path: Path, data: np.ndarray, axes: list[dict], signal_type: str) -> Path:
    """A real HyperSpy file written by RosettaSciIO's own HSPY writer."""
    from rsciio.hspy import file_writer

    file_writer(
        str(path),
        {
            "data": data, "axes": axes, "original_metadata": {},
            "metadata": {"General": {"title": path.stem}, "Signal": {"signal_type": signal_type}},
            "tmp_parameters": {}, "attributes": {"_lazy": False}, "learning_results": {}, "models": {},
            "package_info": {"name": "hyperspy", "version": "2.0"},
        },
    )
    return path


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eelsbatch: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def _no_store_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".zarr" in p.name]


def test_missing_file(tmp_path: Path) -> None:
    result = _cli("convert", str(tmp_path / "absent.dm4"), str(tmp_path / "out.zarr"))
    _assert_one_line_error(result, "absent.dm4", "no such file")
    _no_store_left(tmp_path)


def test_unsupported_extension(tmp_path: Path) -> None:
    source = tmp_path / "spectrum.xyz"
    source.write_text("1 2 3\n")
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "spectrum.xyz", "unsupported file extension")
    _no_store_left(tmp_path)


def test_truncated_dm4(instrument_dir: Path, tmp_path: Path) -> None:
    whole = (instrument_dir / "EELS_SI.dm4").read_bytes()
    source = tmp_path / "half.dm4"
    source.write_bytes(whole[: len(whole) // 2])
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "half.dm4", "truncated or corrupt")
    _no_store_left(tmp_path)


def test_image_only_file_has_no_eels(tmp_path: Path) -> None:
    axes = [
        {"name": "y", "units": "nm", "size": 4, "scale": 1.0, "offset": 0.0, "navigate": False},
        {"name": "x", "units": "nm", "size": 8, "scale": 1.0, "offset": 0.0, "navigate": False},
    ]
    source = _write_hspy(tmp_path / "image.hspy", np.ones((4, 8), "float32"), axes, "")
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "image.hspy", "holds no EELS spectrum (image-only")
    _no_store_left(tmp_path)


def test_velox_image_signal_is_not_a_spectrum(velox_emd: Path, tmp_path: Path) -> None:
    result = _cli("convert", str(velox_emd), str(tmp_path / "out.zarr"), "--signal", "10")
    _assert_one_line_error(result, velox_emd.name, "has no energy axis in eV")
    _no_store_left(tmp_path)


def test_energy_axis_not_in_ev(tmp_path: Path) -> None:
    axes = [{"name": "Wavelength", "units": "nm", "size": 16, "scale": 0.5, "offset": 400.0, "navigate": False}]
    source = _write_hspy(tmp_path / "optical.hspy", np.ones(16, "float32"), axes, "EELS")
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "optical.hspy", "no energy axis in eV")
    _no_store_left(tmp_path)


def test_energy_axis_not_monotonic(tmp_path: Path) -> None:
    energy = np.r_[np.arange(8.0), np.arange(8.0)] + 100.0
    axes = [
        {"name": "x", "units": "nm", "size": 3, "scale": 1.0, "offset": 0.0, "navigate": True},
        {"name": "Energy loss", "units": "eV", "size": 16, "axis": energy, "navigate": False},
    ]
    source = _write_hspy(tmp_path / "scrambled.hspy", np.ones((3, 16), "float32"), axes, "EELS")
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "scrambled.hspy", "not monotonically increasing")
    _no_store_left(tmp_path)


def test_existing_output_needs_overwrite(instrument_dir: Path, tmp_path: Path) -> None:
    source = str(instrument_dir / "EELS_SI.dm4")
    output = tmp_path / "si.zarr"
    assert _cli("convert", source, str(output)).returncode == 0
    _assert_one_line_error(_cli("convert", source, str(output)), "si.zarr", "output exists (use --overwrite")
    replaced = _cli("convert", source, str(output), "--overwrite", "--chunks", "1,2")
    assert replaced.returncode == 0, replaced.stderr
    assert open_store(output)["counts"].chunks[:2] == ((1, 1), (2,))


def test_unwritable_output_path(instrument_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(blocker / "out.zarr"))
    _assert_one_line_error(result, "out.zarr", "cannot write output")


def test_sector_starts_are_recorded_and_checked(instrument_dir: Path, tmp_path: Path) -> None:
    """``--sector-starts``: a known readout layout goes into the store (and to evaluate); one outside the axis is refused."""
    output = tmp_path / "si.zarr"
    result = _cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(output), "--sector-starts", "1500,700")
    assert result.returncode == 0, result.stderr
    assert zarr.open_group(str(output), mode="r").attrs["readout_sector_starts"] == [700, 1500]
    assert open_spectrum_image(output).attrs["readout_sector_starts"] == [700, 1500]
    assert "readout sectors start at channels: 700, 1500" in _cli("info", str(output)).stdout
    for given, problem in (("2048", "sector start 2048 is outside the energy axis's channels 1 to 2047"),
                           ("12a", "sector start '12a' is not a channel number")):
        _assert_one_line_error(_cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(tmp_path / "bad.zarr"),
                                    "--sector-starts", given), "EELS_SI.dm4", problem)
    assert not (tmp_path / "bad.zarr").exists()
