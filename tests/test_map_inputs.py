"""``map`` on every real instrument file (spectrum images and single spectra), and on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client

from eelsbatch.cli import main
from eelsbatch.io import COMPLETE_ATTR, KIND_ATTR, is_complete, mark_incomplete, open_spectrum_image, open_store, write_store
from eelsbatch.mapping import run_map
from eelsbatch.synth import spectrum_image

INSTRUMENT_FILES = [
    "EELS_SI.dm4", "test-EELS_spectrum.dm3", "16x16-spectrum_image-5x5x1024.emi", "lowloss_spectrum.msa",
    "Cr_L_ll.hspy", "CuZn_EELS_mapping_tutorial.hspy", "velox",
]



@pytest.mark.parametrize("name", INSTRUMENT_FILES)
def test_every_real_instrument_file_maps(
    name: str, instrument_dir: Path, velox_emd: Path, shipped_model: Path, tmp_path: Path, dask_client: Client
) -> None:
    source = velox_emd if name == "velox" else instrument_dir / name
    output = tmp_path / "maps.zarr"
    summary = run_map(source, output, shipped_model, dask_client, progress=False)

    counts = open_spectrum_image(source)
    nav = {dim: size for dim, size in counts.sizes.items() if dim != "energy"}
    maps = open_store(output, kind="maps")
    assert maps["probability"].dims == ("element", *nav)
    assert dict(maps["probability"].sizes) == {"element": maps.sizes["element"], **nav}
    probability = maps["probability"].values
    assert np.all((probability >= 0) & (probability <= 1))
    np.testing.assert_allclose(maps["sum_spectrum"].values, counts.values.reshape(-1, counts.sizes["energy"]).sum(axis=0), rtol=1e-5)
    assert summary.spectra == int(np.prod(list(nav.values()), dtype=int))
    found = json.loads(maps.attrs["elements_found"])
    assert found == summary.elements_found
    print(f"{name}: elements found {found or 'none'}; highest mean probabilities:",
          sorted(zip(probability.reshape(probability.shape[0], -1).mean(axis=1).round(3), maps["element"].values))[-4:])
    assert json.loads(maps.attrs["parameters"])["warning"] == summary.warning
    if name == "CuZn_EELS_mapping_tutorial.hspy":  # 8 eV/channel, four times the coarsest the model was trained on
        assert "dispersion 8 eV/channel is outside" in summary.warning
        assert {"Cu", "Zn"} <= set(found), found
    else:
        assert summary.warning is None, summary.warning


def _bad_input_stores(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Stores that ``map`` must refuse, each with a phrase its error message must hold."""
    counts, _ = spectrum_image("grains", (2, 2), seed=0, channels=256)
    incomplete = write_store(counts, tmp_path / "incomplete.zarr")
    mark_incomplete(incomplete)
    no_energy = tmp_path / "no-energy.zarr"
    xr.Dataset({"counts": counts.drop_vars("energy")}, attrs={KIND_ATTR: "spectrum_image", COMPLETE_ATTR: True}).to_zarr(
        no_energy, consolidated=False
    )
    beyond_grid = write_store(counts.assign_coords(energy=counts["energy"].values + 4000.0), tmp_path / "beyond.zarr")
    training_set = tmp_path / "training.zarr"
    xr.Dataset({"spectrum": (("sample", "channel"), np.ones((2, 8), np.float32))},
               attrs={KIND_ATTR: "training_set", COMPLETE_ATTR: True}).to_zarr(training_set, consolidated=False)
    return {
        "incomplete": (incomplete, "not complete"),
        "no energy coordinate": (no_energy, "energy"),
        "not a spectrum image": (training_set, "not a spectrum image"),
        "window off the model grid": (beyond_grid, "model grid"),
    }


def _run_map(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *arguments: str) -> str:
    """Run the ``eelsbatch map`` entry point in this process; return its stderr after it exits with code 2."""
    monkeypatch.setattr(sys, "argv", ["eelsbatch", "map", *arguments])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err


def _assert_one_line_error(stderr: str, *phrases: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eelsbatch: error: "), stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def test_bad_input_stores_give_one_line_errors_and_no_output(
    tmp_path: Path, shipped_model: Path, dask_client: Client, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = dask_client.scheduler.address  # an existing cluster: no cluster start per case
    for case, (store, phrase) in _bad_input_stores(tmp_path).items():
        output = tmp_path / f"maps-{case.replace(' ', '-')}.zarr"
        stderr = _run_map(capsys, monkeypatch, str(store), str(output), "--model", str(shipped_model), "--scheduler", scheduler)
        _assert_one_line_error(stderr, str(store), phrase)
        assert not output.exists(), case


def test_unreachable_scheduler_and_missing_slurm_give_one_line_errors(
    tmp_path: Path, shipped_model: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts, _ = spectrum_image("grains", (2, 2), seed=0, channels=256)
    store = write_store(counts, tmp_path / "image.zarr")
    output = tmp_path / "maps.zarr"

    stderr = _run_map(capsys, monkeypatch, str(store), str(output), "--model", str(shipped_model), "--scheduler", "tcp://127.0.0.1:9")
    _assert_one_line_error(stderr, "tcp://127.0.0.1:9", "scheduler")
    assert not output.exists()

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no sbatch/squeue on PATH
    stderr = _run_map(capsys, monkeypatch, str(store), str(output), "--model", str(shipped_model), "--cluster", "slurm")
    _assert_one_line_error(stderr, "SLURM")
    assert not output.exists() and not is_complete(output)
