"""Bad input: one line ``eelsbatch: error: <file>: <problem>`` on stderr, exit code 2, no traceback, no output that
looks complete; and ``--overwrite`` replaces only what eelsbatch wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import eelsbatch.plot
from eelsbatch.errors import EelsbatchError
from eelsbatch.io import (
    KIND_ATTR,
    atomic_store,
    mark_complete,
    open_spectrum_image,
    open_store,
    prepare_output,
    write_store,
)

MSA_HEADER = """\
#FORMAT      : EMSA/MAS Spectral Data File
#VERSION     : 1.0
#TITLE       : hand-written
#NPOINTS     : {points}
#NCOLUMNS    : 1
#XUNITS      : {units}
#YUNITS      : Counts
#DATATYPE    : Y
#XPERCHAN    : {dispersion}
#OFFSET      : 100.0
{signal_type}#SPECTRUM    : Spectral Data Starts Here
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", *args], capture_output=True, text=True, timeout=120)


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, one ``eelsbatch: error:`` line holding every fragment, and no traceback anywhere."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eelsbatch: error: ")
    assert "Traceback" not in result.stderr + result.stdout  # RosettaSciIO logs to stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _write_msa(path: Path, values: list[float], units: str = "eV", dispersion: str = "0.5", eels: bool = True) -> Path:
    header = MSA_HEADER.format(points=len(values), units=units, dispersion=dispersion,
                               signal_type="#SIGNALTYPE  : ELS\n" if eels else "")
    path.write_text(header + "".join(f"{value}\n" for value in values) + "#ENDOFDATA   : End Of Data and File\n")
    return path


def _no_store_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".zarr" in p.name]


# --- 1: spectra of 0 or 1 channels ----------------------------------------------------------------------


def _rsciio_msa(path: Path, channels: int) -> Path:
    """An EELS spectrum of ``channels`` channels written by RosettaSciIO's own MSA writer."""
    from rsciio.msa import file_writer

    axis = {"name": "Energy loss", "units": "eV", "size": channels, "scale": 0.5, "offset": 100.0, "navigate": False}
    file_writer(str(path), {"data": np.ones(channels), "axes": [axis], "original_metadata": {},
                            "metadata": {"General": {"title": path.stem}, "Signal": {"signal_type": "EELS"}}})
    return path


@pytest.mark.parametrize("channels", [0, 1])
@pytest.mark.parametrize("command", ["convert", "info"])
def test_too_few_channels_is_one_line_error(tmp_path: Path, channels: int, command: str) -> None:
    source = _rsciio_msa(tmp_path / f"short{channels}.msa", channels)
    args = [command, str(source)] + ([str(tmp_path / "out.zarr")] if command == "convert" else [])
    _assert_one_line_error(_cli(*args), source.name, f"energy axis has {channels} channel(s); at least 2 needed")
    _no_store_left(tmp_path)


@pytest.mark.parametrize("channels", [0, 1])
def test_too_few_channels_is_refused_at_reading(tmp_path: Path, channels: int) -> None:
    """``map`` reads its input through :func:`open_spectrum_image` too."""
    with pytest.raises(EelsbatchError, match=f"energy axis has {channels} channel"):
        open_spectrum_image(_rsciio_msa(tmp_path / "short.msa", channels))


# --- 2: files that are not MSA, and MSA with an energy axis in no units -------------------------------


@pytest.mark.parametrize("content", [bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)),
                                     b"hello world\nthis is not an MSA file\n"], ids=["random-bytes", "text"])
def test_garbage_msa_cannot_be_read_as_msa(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "garbage.msa"
    source.write_bytes(content)
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "garbage.msa", "cannot be read as MSA")
    _assert_one_line_error(_cli("info", str(source)), "garbage.msa", "cannot be read as MSA")
    _no_store_left(tmp_path)


def test_msa_keyword_the_reader_cannot_parse_says_what_the_reader_said(tmp_path: Path) -> None:
    """The reader logs its error with three chained tracebacks and carries on; one line says what it said."""
    source = _write_msa(tmp_path / "bad.msa", [1.0, 2.0, 3.0], dispersion="0.5 e x")
    line = _assert_one_line_error(_cli("info", str(source)), "bad.msa", "cannot be read as MSA", "XPERCHAN")
    assert "  " not in line  # the reader's message, whitespace collapsed
    _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "XPERCHAN")
    _no_store_left(tmp_path)


@pytest.mark.parametrize("eels", [True, False], ids=["typed-ELS", "untyped"])
def test_msa_energy_axis_in_undefined_units_says_so(tmp_path: Path, eels: bool) -> None:
    source = _write_msa(tmp_path / "undefined.msa", [1.0, 2.0, 3.0, 4.0], units="<undefined>", eels=eels)
    line = _assert_one_line_error(_cli("convert", str(source), str(tmp_path / "out.zarr")), "no energy axis in eV", "<undefined>")
    assert "image-only" not in line
    _no_store_left(tmp_path)


# --- 3: a HyperSpy file named .hdf5 -------------------------------------------------------------------


def test_hyperspy_file_named_hdf5_is_read(instrument_dir: Path, tmp_path: Path) -> None:
    """``.hdf5`` is claimed by several RosettaSciIO plugins (Delmic, USID, HSPY); the one that reads it is used."""
    source = tmp_path / "x.hdf5"
    shutil.copy(instrument_dir / "Cr_L_ll.hspy", source)
    described = _cli("info", str(source))
    assert described.returncode == 0, described.stderr
    assert "2035 channels" in described.stdout
    expected = open_spectrum_image(instrument_dir / "Cr_L_ll.hspy")
    xr.testing.assert_equal(open_spectrum_image(source), expected)
    converted = _cli("convert", str(source), str(tmp_path / "out.zarr"))
    assert converted.returncode == 0, converted.stderr
    np.testing.assert_array_equal(open_store(tmp_path / "out.zarr")["counts"].values, expected.values)


def test_hdf5_that_no_plugin_reads_names_every_reader(tmp_path: Path) -> None:
    source = tmp_path / "noise.hdf5"
    source.write_bytes(b"\0" * 1000)
    _assert_one_line_error(_cli("info", str(source)), "noise.hdf5", "cannot be read as", "HSPY")


# --- 4: --overwrite replaces only an eelsbatch store or an empty folder --------------------------------


def _folder_of_user_files(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


def _plain_zarr_group(path: Path) -> Path:
    zarr.open_group(str(path), mode="w").attrs["owner"] = "someone else"
    return path


def _a_file(path: Path) -> Path:
    path.write_text("a file named like a store is not a store")
    return path


@pytest.mark.parametrize("make", [_folder_of_user_files, _plain_zarr_group, _a_file], ids=["folder", "zarr-group", "file"])
def test_overwrite_refuses_what_eelsbatch_did_not_write(instrument_dir: Path, tmp_path: Path, make) -> None:
    output = make(tmp_path / "out.zarr")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = _cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(output), "--overwrite")
    _assert_one_line_error(result, "out.zarr", "exists and is not an eelsbatch store; refusing to replace it")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(EelsbatchError, match="is not an eelsbatch store"):
        prepare_output(output, overwrite=True)  # every writer (convert, synth, map) checks here


def test_overwrite_replaces_an_empty_folder_and_an_eelsbatch_store(instrument_dir: Path, tmp_path: Path) -> None:
    from eelsbatch.io import is_eelsbatch_store

    output = tmp_path / "out.zarr"
    output.mkdir()
    assert not is_eelsbatch_store(output)
    source = str(instrument_dir / "EELS_SI.dm4")
    for _ in range(2):  # the empty folder, then the store the first run wrote
        result = _cli("convert", source, str(output), "--overwrite")
        assert result.returncode == 0, result.stderr
        assert is_eelsbatch_store(output)


def test_is_eelsbatch_store(instrument_dir: Path, tmp_path: Path) -> None:
    from eelsbatch.io import is_eelsbatch_store

    store = write_store(open_spectrum_image(instrument_dir / "EELS_SI.dm4"), tmp_path / "si.zarr")
    assert is_eelsbatch_store(store)
    zarr.open_group(str(store), mode="r+").attrs[KIND_ATTR] = "maps"  # any kind, complete or not
    assert is_eelsbatch_store(store)
    assert not is_eelsbatch_store(_plain_zarr_group(tmp_path / "plain.zarr"))
    assert not is_eelsbatch_store(_a_file(tmp_path / "file.zarr"))
    assert not is_eelsbatch_store(tmp_path / "absent.zarr")


# --- 5: partial stores of killed writers ----------------------------------------------------------------


KILLED_WRITER = textwrap.dedent("""
    import os, socket, sys
    import zarr
    from eelsbatch.io import atomic_store
    if len(sys.argv) > 2:
        socket.gethostname = lambda: sys.argv[2]
    with atomic_store(sys.argv[1]) as temporary:
        zarr.open_group(str(temporary), mode="w").attrs["half"] = "written"
        os._exit(9)  # killed: no clean-up runs
""")


def _killed_writer(output: Path, host: str | None = None) -> Path:
    """Leave the partial store of a writer killed mid-write (on this host, or on ``host``)."""
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(output), *([host] if host else [])], timeout=120)
    (partial,) = _partials(output)
    return partial


def _partials(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f".{output.name}.partial-*"))


def test_partial_store_of_a_killed_writer_is_removed_by_the_next_write(instrument_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.zarr"
    _killed_writer(output)
    other = _killed_writer(tmp_path / "other.zarr")  # another output's partial: not this write's to remove
    result = _cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(output))
    assert result.returncode == 0, result.stderr
    assert _partials(output) == []
    assert _partials(tmp_path / "other.zarr") == [other]


def test_partials_of_live_writers_and_other_hosts_are_kept(instrument_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.zarr"
    elsewhere = _killed_writer(output, host="another-node.cluster")  # its writer may well be alive there

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        with atomic_store(output) as live:  # this process: alive while the second writer runs
            zarr.open_group(str(live), mode="w")
            result = _cli("convert", str(instrument_dir / "EELS_SI.dm4"), str(output))
            assert result.returncode == 0, result.stderr
            assert live.is_dir() and elsewhere.is_dir()
            raise Abandon
    assert _partials(output) == [elsewhere]


# --- 6: plot checks where it writes before it renders ---------------------------------------------------


@pytest.fixture()
def maps_store(tmp_path: Path) -> Path:
    """A small complete maps store (nothing found: the sum spectrum only)."""
    dims = ("element", "y", "x")
    dataset = xr.Dataset(
        {"probability": (dims, np.zeros((1, 3, 4), "float32")), "edge_intensity": (dims, np.zeros((1, 3, 4), "float32")),
         "sum_spectrum": ("energy", np.linspace(1.0, 2.0, 8))},
        coords={"element": np.array(["Fe"], dtype=object), "y": np.arange(3.0), "x": np.arange(4.0), "energy": 700.0 + np.arange(8.0)},
        attrs={KIND_ATTR: "maps", "elements_found": "[]", "model_name": "test"},
    )
    dataset.to_zarr(str(tmp_path / "maps.zarr"), consolidated=False)
    mark_complete(tmp_path / "maps.zarr")
    return tmp_path / "maps.zarr"


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize(
    ("where", "problem"),
    [(lambda tmp: tmp / "missing" / "x.png", "does not exist"),
     (lambda tmp: _read_only_folder(tmp) / "x.png", "cannot write"),
     (lambda tmp: (tmp / "x.png").mkdir() or tmp / "x.png", "is a folder"),
     (lambda tmp: tmp / "x.zarr", "unsupported image format")],
    ids=["missing-folder", "read-only-folder", "folder", "format"],
)
def test_plot_checks_its_output_before_rendering(maps_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 where, problem: str) -> None:
    out = where(tmp_path)
    if "read-only" in str(out) and os.access(out.parent, os.W_OK):
        pytest.skip("this user can write into a read-only folder (root)")
    _assert_one_line_error(_cli("plot", str(maps_store), "--out", str(out)), out.name, problem)

    def rendered(*args, **kwargs):
        raise AssertionError("rendered before the output was checked")

    monkeypatch.setattr(eelsbatch.plot.plt, "figure", rendered)
    with pytest.raises(EelsbatchError, match=problem):
        eelsbatch.plot.plot_maps(maps_store, out)


def test_library_errors_are_kinds_a_caller_can_catch(tmp_path: Path) -> None:
    """Bad input, stores, models and clusters each raise their own kind of EelsbatchError, in words without CLI flags."""
    import eelsbatch
    from eelsbatch.cluster import ClusterOptions, open_client
    from eelsbatch.errors import ClusterError, EelsbatchError, InputError, ModelError, StoreError
    from eelsbatch.io import open_store
    from eelsbatch.synth import generate

    cases = [(InputError, lambda: eelsbatch.open(tmp_path / "missing.dm4")),
             (StoreError, lambda: open_store(tmp_path)),
             (ModelError, lambda: eelsbatch.load_model(tmp_path)),
             (ClusterError, lambda: open_client(ClusterOptions(scheduler="tcp://127.0.0.1:1")).__enter__()),
             (InputError, lambda: generate(0, seed=1))]
    for kind, call in cases:
        with pytest.raises(kind) as caught:
            call()
        assert isinstance(caught.value, EelsbatchError) and "--" not in caught.value.problem, caught.value
