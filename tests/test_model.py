"""The edge recogniser: preprocessing onto the model grid, training, save/load, the shipped model, bad input.

Training tests use a tiny real training store written by the real synthesis on the shared
two-worker LocalCluster; the shipped model is loaded and run, never retrained.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from safetensors.torch import load_file

from eelsbatch.edges import twin_counts
from eelsbatch.errors import EelsbatchError
from eelsbatch.io import open_spectrum_image, write_store
from eelsbatch.model import FORMAT_VERSION, SHIPPED_MODEL, EdgeNet, ModelGrid, Recogniser, load_recogniser
from eelsbatch.model._data import TrainingStore
from eelsbatch.model._evaluate import error_kinds
from eelsbatch.model._metrics import correct_sets, exact_match, false_alarm_threshold, per_element_scores
from eelsbatch.model._network import FAMILIES, WINDOW_KERNELS, WINDOW_MARGIN_EV, WINDOW_MARGIN_RELATIVE
from eelsbatch.model._train import _losses, train
from eelsbatch.model._widen import widen
from eelsbatch.synth import ELEMENTS, generate, write_training_set
from eelsbatch.synth._forward import REAL_ACQUISITIONS

SHIPPED = SHIPPED_MODEL
NOISE_ONLY = ("test-EELS_spectrum.dm3", "16x16-spectrum_image-5x5x1024.emi")


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, dask_client) -> Path:
    """96 labelled spectra in 3 Zarr chunks, from the real forward model."""
    path = tmp_path_factory.mktemp("synth") / "tiny.zarr"
    return write_training_set(path, n=96, seed=11, client=dask_client, chunk_size=32)


@pytest.fixture(scope="module")
def shipped() -> Recogniser:
    return load_recogniser(SHIPPED)


def _run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eelsbatch.cli", *arguments], capture_output=True, text=True, timeout=120)


def _assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eelsbatch: error: "), result.stderr
    for word in words:
        assert word in lines[0]


# --- preprocessing onto the model grid -------------------------------------------------------

def test_resampling_conserves_counts_and_masks_outside_the_window() -> None:
    grid = ModelGrid()
    energy = 400.0 + 0.25 * np.arange(2048)  # 400-912 eV
    counts = np.random.default_rng(0).poisson(50.0, size=(3, 2048)).astype(np.float32)
    density, mask = grid.resample(counts, energy)
    cells = grid.edges
    inside = (cells[:-1] >= energy[0] - 0.125) & (cells[1:] <= energy[-1] + 0.125)
    np.testing.assert_array_equal(mask[0], inside)
    assert np.all(density[:, ~mask[0]] == 0)
    # counts in the covered cells = integral of the density over them
    covered = (density * np.diff(cells)).sum(axis=1)
    first, last = cells[:-1][mask[0]][0], cells[1:][mask[0]][-1]
    channel_low = energy - 0.125
    in_cells = (channel_low >= first) & (channel_low + 0.25 <= last)
    np.testing.assert_allclose(covered, counts[:, in_cells].sum(axis=1), rtol=2e-3)


def test_normalised_input_does_not_depend_on_dispersion_or_intensity() -> None:
    """The same physical spectrum at 0.1 and 1 eV/ch and 1000x the dose gives the same network input."""
    grid = ModelGrid()

    def spectrum(offset: float, dispersion: float, channels: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
        energy = offset + dispersion * np.arange(channels)
        per_ev = scale * (energy / 300.0) ** -3.0 * (1 + 0.5 * (energy > 532.0) * (532.0 / energy) ** 2)
        return (per_ev * dispersion)[None, :], energy

    fine = grid.normalise(*grid.resample(*spectrum(300.0, 0.1, 4000, 1e4)))  # 300-700 eV
    coarse = grid.normalise(*grid.resample(*spectrum(300.0, 1.0, 400, 1e7)))
    cells = grid.edges
    away_from_step = (cells[1:] < 531.0) | (cells[:-1] > 533.0)  # a 1 eV channel blurs the step itself
    both = (fine[0, 1] > 0) & (coarse[0, 1] > 0) & away_from_step
    assert both.sum() > 50
    # the two masks differ by at most a cell at each end; standardisation over them shifts little
    np.testing.assert_allclose(fine[0, 0, both], coarse[0, 0, both], atol=0.05)


def test_readout_boundaries_mark_the_grid_cells_where_a_sector_starts() -> None:
    """The third input channel: 1 in the cells holding the first channel of a 2- or 4-port sector, in the window only."""
    grid = ModelGrid()
    energy = 600.0 + 0.25 * np.arange(2048)  # sectors start at channels 512, 1024, 1536: 727.9, 855.9, 983.9 eV
    counts = np.full((3, 2048), 100.0, np.float32)
    inputs, mask = grid.inputs(counts, energy, sector_marks=True)
    assert inputs.shape == (3, 3, grid.points)
    marked = grid.energy[np.nonzero(inputs[0, 2])[0]]
    np.testing.assert_allclose(marked, [727.875, 855.875, 983.875], rtol=grid.edges[1] / grid.edges[0] - 1)
    assert (inputs[:, 2] <= mask).all() and (inputs[1:, 2] == inputs[0, 2]).all()
    assert grid.inputs(counts, energy)[0].shape == (3, 2, grid.points)
    shifted = np.stack([energy, energy + 300.0, energy - 560.0])  # per-spectrum axes; the last starts off the grid
    rows, _ = grid.inputs(counts, shifted, sector_marks=True)
    np.testing.assert_allclose(grid.energy[np.nonzero(rows[1, 2])[0]], [1027.875, 1155.875, 1283.875], rtol=0.005)
    assert rows[2, 2].sum() == 3 and (rows[2, 2] <= rows[2, 1]).all()
    # a known layout (a spectrum cropped before saving): only the given channels are marked; none for one port
    known, _ = grid.inputs(counts, energy, sector_marks=True, sector_starts=[700])
    np.testing.assert_allclose(grid.energy[np.nonzero(known[0, 2])[0]], [774.875], rtol=grid.edges[1] / grid.edges[0] - 1)
    assert not grid.inputs(counts, energy, sector_marks=True, sector_starts=[])[0][:, 2].any()


@pytest.mark.parametrize("sector_starts", [None, [700], []])
def test_inputs_prepared_on_the_device_equal_the_cpu_preparation(shipped: Recogniser, sector_starts) -> None:
    """The GPU path (rebinning and normalisation as tensors on the network's device), run here on the CPU device,
    gives the numpy path's inputs and probabilities, the readout marks, masked cells and degenerate spectra included."""
    data = generate(40, seed=8, window=(280.0, 0.5))
    energy = 280.0 + 0.5 * np.arange(2048)
    counts = data["spectrum"]
    counts[0], counts[1], counts[2, ::2] = 0.0, -1.0, 0.0  # empty, negative (dark over-subtracted), half empty
    expected = shipped.inputs(counts, energy, sector_starts)
    prepared = shipped.device_inputs(energy, sector_starts)(torch.from_numpy(counts)).numpy()
    # the flat, lifted row 1 standardises float32 rebinning rounding (1e-7, machine-dependent) over a spread of 1e-3
    np.testing.assert_allclose(prepared[1], expected[1], atol=1e-3)
    np.testing.assert_allclose(np.delete(prepared, 1, axis=0), np.delete(expected, 1, axis=0), atol=1e-4)
    on_device = shipped.predict(counts, energy, sector_starts=sector_starts, prepare_on_device=True)
    on_cpu = shipped.predict(counts, energy, sector_starts=sector_starts, prepare_on_device=False)
    np.testing.assert_allclose(on_device["probability"], on_cpu["probability"], atol=5e-5)
    np.testing.assert_array_equal(on_device["onset_energy"], on_cpu["onset_energy"])
    with pytest.raises(EelsbatchError, match="misses the model grid"):
        shipped.device_inputs(3500.0 + np.arange(256.0))


def test_window_missing_the_grid_is_an_error() -> None:
    recogniser = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS))
    counts = np.ones((2, 1024), np.float32)
    with pytest.raises(EelsbatchError, match="misses the model grid"):
        recogniser.predict(counts, 3200.0 + np.arange(1024.0))
    with pytest.raises(EelsbatchError, match="misses the model grid"):
        recogniser.predict(counts, -200.0 + 0.1 * np.arange(1024.0))


# --- training ---------------------------------------------------------------------------------

def test_training_steps_reduce_the_loss(tiny_store: Path) -> None:
    torch.manual_seed(0)
    network = EdgeNet.build(list(ELEMENTS), ModelGrid(), width=16, hidden=16, evidence=8)
    store = TrainingStore(tiny_store, list(ELEMENTS), ModelGrid(), network.downsampling)
    batch = store.read(0, 32)
    assert batch.inputs.shape == (32, 3, 1024) and batch.detectable.shape == (32, len(ELEMENTS))
    assert (batch.tags > 0).any(), "some spectra carry a detectable edge onset tag"
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        presence, onset = _losses(network, batch, torch.device("cpu"))
        loss = presence + 0.3 * onset
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


class _FixedOutputs(torch.nn.Module):
    """Outputs held as parameters, to read the loss gradient on each one."""

    def __init__(self, presence: np.ndarray, steps: int) -> None:
        super().__init__()
        self.presence = torch.nn.Parameter(torch.zeros(presence.shape))
        self.onset = torch.nn.Parameter(torch.zeros(presence.shape[0], steps))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.presence, self.onset


def test_presence_loss_ignores_present_elements_too_faint_to_be_detectable(tiny_store: Path) -> None:
    batch = TrainingStore(tiny_store, list(ELEMENTS), ModelGrid(), EdgeNet.downsampling).read(0, 32)
    faint = batch.present & (batch.detectable < 0.5)
    assert faint.any() and (batch.detectable > 0.5).any()
    outputs = _FixedOutputs(batch.detectable, batch.tags.shape[1])
    presence, _ = _losses(outputs, batch, torch.device("cpu"))
    presence.backward()
    gradient = outputs.presence.grad.numpy()
    assert (gradient[faint] == 0).all()  # neither a miss nor an extra: no push either way
    assert (gradient[~faint] != 0).all()  # detectable (pushed up) and absent (pushed down) elements


def test_exact_match_requires_detectable_elements_and_forbids_absent_ones() -> None:
    required = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]], bool)  # detectable
    allowed = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]], bool)  # present (element 1 faint)
    predicted = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]], bool)
    # right: row 0 (the faint element reported) and row 3; wrong: row 1 (miss) and row 2 (absent element 2 reported)
    assert exact_match(predicted, required, allowed) == 0.5
    assert exact_match(predicted, required) == 0.25  # strictly: row 0 is wrong too
    scores = per_element_scores(predicted, required, allowed)
    np.testing.assert_array_equal(scores["support"], [3, 0, 0])
    assert scores["recall"][0] == pytest.approx(2 / 3) and scores["precision"][0] == 1.0
    assert scores["precision"][2] == 0.0  # its one report is a false positive


def test_train_saves_a_loadable_model_and_resumes(tiny_store: Path, tmp_path: Path) -> None:
    output = tmp_path / "tiny-model"
    first = train(tiny_store, output, list(ELEMENTS), epochs=1, batch_size=32, validation_fraction=0.34, seed=1, threads=1)
    assert {"weights.safetensors", "config.json", "checkpoint.pt"} <= {p.name for p in output.iterdir()}
    config = json.loads((output / "config.json").read_text())
    assert config["training"]["samples"] == 96 and config["training"]["validation_samples"] == 32
    assert len(config["training"]["history"]) == 1
    assert 0.05 < config["temperature"] < 20
    assert 0.5 <= config["threshold"] < 1 and "validation spectra with no element in the window" in config["threshold_rule"]
    stored = zarr.open_group(str(tiny_store), mode="r")  # the training prior and dispersions, from the store
    assert config["composition_share"] == {element: stored.attrs["composition_share"][element] for element in ELEMENTS}
    dispersion = stored["dispersion"][:]
    assert config["dispersion_range_eV"] == pytest.approx([dispersion.min(), dispersion.max()], rel=1e-3)
    assert load_recogniser(output).dispersion_range == tuple(config["dispersion_range_eV"])

    resumed = train(tiny_store, output, list(ELEMENTS), epochs=2, batch_size=32, validation_fraction=0.34, seed=1, threads=1, resume=True)
    history = json.loads((output / "config.json").read_text())["training"]["history"]
    assert [row["epoch"] for row in history] == [1, 2]  # epoch 1 came from the checkpoint, not rerun
    assert history[0] == first.info["training"]["history"][0]

    loaded = load_recogniser(output)
    spectra = generate(8, seed=99)
    energy = spectra["energy_offset"][:, None] + spectra["dispersion"][:, None] * np.arange(spectra["spectrum"].shape[1])
    expected = resumed.predict(spectra["spectrum"], energy)["probability"]
    np.testing.assert_array_equal(loaded.predict(spectra["spectrum"], energy)["probability"], expected)


def test_loader_processes_change_nothing_but_speed(tiny_store: Path, tmp_path: Path) -> None:
    options = dict(epochs=2, batch_size=16, validation_fraction=0.34, seed=3, threads=1, chunks_per_epoch=1)
    in_turn = train(tiny_store, tmp_path / "in-turn", list(ELEMENTS), loader_workers=0, **options)
    ahead = train(tiny_store, tmp_path / "ahead", list(ELEMENTS), loader_workers=2, **options)
    assert ahead.info["training"]["loader_workers"] == 2
    for name, weights in in_turn.network.state_dict().items():
        torch.testing.assert_close(ahead.network.state_dict()[name], weights, rtol=0, atol=0, msg=name)
    torch.manual_seed(3)
    untrained = EdgeNet.build(list(ELEMENTS), ModelGrid())
    assert not torch.equal(untrained.state_dict()["front.0.weight"], ahead.network.state_dict()["front.0.weight"])


def test_decide_gives_an_edge_two_coincident_elements_share_to_the_likelier() -> None:
    recogniser = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS), threshold=0.5)
    column = {element: i for i, element in enumerate(ELEMENTS)}

    def decided(**probabilities: float) -> set[str]:
        row = np.zeros((1, len(ELEMENTS)), np.float32)
        for element, value in probabilities.items():
            row[0, column[element]] = value
        return {ELEMENTS[i] for i in np.flatnonzero(recogniser.decide(row)[0])}

    assert decided(Cu=0.3, Pr=0.25) == {"Cu"}  # one edge at 931 eV, more likely Cu's
    assert decided(Cu=0.2, Pr=0.2) == set()  # together not above the threshold
    assert decided(Cu=0.3, Fe=0.3) == set()  # not coincident: two separate weak edges stay unreported
    assert decided(Cu=0.6, Pr=0.3) == {"Cu"}  # the edge is already explained
    assert decided(Pr=0.45, Cu=0.1, Nd=0.2) == {"Pr"}  # the likeliest of its coincident elements only
    assert decided(O=0.7, Fe=0.51) == {"O", "Fe"}
    assert decided(Co=0.9, Ba=0.6) == {"Co"}  # both reported for the one edge at 780 eV: the likelier explains it
    assert decided(Ba=0.9, Co=0.6, Fe=0.6) == {"Ba", "Fe"}  # Fe's edge is its own
    assert decided(Co=0.9, Ba=0.8) == {"Co", "Ba"}  # both likely enough: both in the specimen
    assert recogniser.decide(np.full((1, len(ELEMENTS)), 0.3, np.float32), threshold=0.9).sum() == 0


def test_the_explanation_of_a_coincident_edge_weighs_each_elements_prior_in_real_specimens() -> None:
    """A model trained on compositions where Pr is as common as Cu: real specimens hold Cu far more often, so an
    edge the network splits near evenly is Cu's; a clear Pr edge stays Pr's, and elements of their own edges stay."""
    even = {element: 0.03 for element in ELEMENTS}
    recogniser = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS), threshold=0.5,
                            info={"composition_share": even})
    plain = Recogniser(recogniser.network, list(ELEMENTS), threshold=0.5)
    column = {element: i for i, element in enumerate(ELEMENTS)}
    ratio = recogniser.prior_ratio
    assert plain.prior_ratio is None and ratio[column["O"]] > 10 * ratio[column["Sb"]] and ratio[column["Cu"]] > ratio[column["Pr"]]

    def decided(model: Recogniser, **probabilities: float) -> set[str]:
        row = np.zeros((1, len(ELEMENTS)), np.float32)
        for element, value in probabilities.items():
            row[0, column[element]] = value
        return {ELEMENTS[i] for i in np.flatnonzero(model.decide(row)[0])}

    assert decided(plain, Pr=0.3, Cu=0.25) == {"Pr"} and decided(recogniser, Pr=0.3, Cu=0.25) == {"Cu"}
    assert decided(plain, Sb=0.7, O=0.6) == {"Sb"} and decided(recogniser, Sb=0.7, O=0.6) == {"O"}
    assert decided(recogniser, Sb=0.9, O=0.05) == {"Sb"}  # the network's evidence, not the prior, decides a clear edge
    assert decided(recogniser, Pr=0.8, Cu=0.8) == {"Pr", "Cu"}  # both likely enough: both in the specimen
    assert decided(recogniser, Pr=0.6, Fe=0.6) == {"Pr", "Fe"}  # no coincident rival: the prior changes nothing


def test_errors_are_told_apart_by_kind_and_coincident_substitutions_by_the_window() -> None:
    """Cu L2,3 and Pr M4,5 both start at 931 and 951 eV: in 900-1000 eV nothing else tells them apart; up to 1150 eV
    Cu L1 (1096 eV) does."""
    recogniser = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS))
    column = {element: i for i, element in enumerate(ELEMENTS)}

    def rows(*sets: str) -> np.ndarray:
        table = np.zeros((len(sets), len(ELEMENTS)), bool)
        for row, elements in enumerate(sets):
            table[row, [column[e] for e in elements.split()]] = True
        return table

    # rows: Cu reported as Pr twice (the second window holds Cu L1), Fe missed, O extra, Fe missed and O extra, right
    detectable = rows("Cu", "Cu", "Fe", "Fe", "Fe", "Fe")
    predicted = rows("Pr", "Pr", "", "Fe O", "O", "Fe")
    windows = np.array([[900.0, 1000.0], [900.0, 1150.0], [400.0, 900.0], [400.0, 900.0], [400.0, 900.0], [400.0, 900.0]])
    assert error_kinds(recogniser, predicted, detectable, detectable, windows) == {
        "missed": 1, "extra": 1, "substitution_told_apart_in_window": 1, "substitution_indistinguishable_in_window": 1,
        "missed_and_extra": 1}


def test_false_alarm_threshold_is_the_lowest_that_keeps_edge_free_spectra_quiet() -> None:
    truth = np.zeros((200, 3), bool)
    truth[100:, 0] = True  # 100 spectra with an element, 100 edge-free
    probability = np.full((200, 3), 0.1)
    probability[:100, 1] = np.linspace(0.0, 0.99, 100)  # edge-free maxima spread over [0, 0.99]
    probability[100:, 0] = 0.99
    # 2 % tolerated: at most 2 of the 100 edge-free maxima may lie above the threshold
    threshold = false_alarm_threshold(probability, truth, rate=0.02)
    assert np.mean(probability[:100].max(axis=1) > threshold) <= 0.02
    assert np.mean(probability[:100].max(axis=1) > threshold - 0.01) > 0.02  # and no lower one would do
    assert false_alarm_threshold(probability, truth, rate=0.5) == 0.5  # never below the floor
    assert false_alarm_threshold(probability[100:], truth[100:], rate=0.01) == 0.5  # no edge-free spectra

    # elements 1 and 2 have coincident edges: the decision reports one when the two together pass the threshold
    coincident = np.zeros((3, 3), bool)
    coincident[1, 2] = coincident[2, 1] = True
    split = probability.copy()
    split[:100, 2] = 0.05
    plain = false_alarm_threshold(split, truth, rate=0.1)
    paired = false_alarm_threshold(split, truth, rate=0.1, coincident=coincident)
    pair_sums = split[:100, 1] + split[:100, 2]
    assert np.mean(pair_sums > plain) > 0.1 and np.mean(pair_sums > paired) <= 0.1 and paired > plain


def test_train_command_trains_on_several_stores_as_one(tiny_store: Path, tmp_path: Path, dask_client) -> None:
    """The default draws beside real acquisitions: each store validated, the prior and dispersions of both recorded."""
    real = write_training_set(tmp_path / "real.zarr", n=32, seed=12, client=dask_client, chunk_size=16, quality=REAL_ACQUISITIONS)
    output = tmp_path / "cli-model"
    result = _run_cli("train", "--data", str(tiny_store), "--data", str(real), "--out", str(output), "--epochs", "1",
                      "--batch-size", "48", "--val-fraction", "0.34", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "epoch 1" in result.stderr + result.stdout
    assert load_recogniser(output).elements == list(ELEMENTS)
    config = json.loads((output / "config.json").read_text())
    assert config["training"]["samples"] == 96 + 32 and config["training"]["data"] == "tiny.zarr, real.zarr"
    # the last chunk of each (32 and 16; a real-acquisition window almost wholly off the grid is not read)
    assert 32 < config["training"]["validation_samples"] <= 32 + 16
    shares = [zarr.open_group(str(path), mode="r").attrs["composition_share"] for path in (tiny_store, real)]
    assert config["composition_share"]["O"] == pytest.approx((96 * shares[0]["O"] + 32 * shares[1]["O"]) / 128)
    dispersion = np.concatenate([zarr.open_group(str(path), mode="r")["dispersion"][:] for path in (tiny_store, real)])
    assert config["dispersion_range_eV"] == pytest.approx([dispersion.min(), dispersion.max()], rel=1e-3)


# --- save / load --------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    grid = ModelGrid(start_eV=80.0, stop_eV=2500.0, points=512, floor=1e-2)
    elements = ["C", "N", "O", "Fe", "La"]
    original = Recogniser(EdgeNet.build(elements, grid, width=32, hidden=24, evidence=8), elements, grid, temperature=1.7, threshold=0.42, name="round-trip")
    original.save(tmp_path / "m")
    loaded = load_recogniser(tmp_path / "m")
    assert loaded.grid == grid and loaded.elements == elements
    assert loaded.temperature == 1.7 and loaded.threshold == 0.42 and loaded.name == "round-trip"
    assert loaded.network.lstm.hidden_size == 24 and loaded.network.sizes["evidence"] == 8 and len(loaded.sha256) == 64
    for key, value in original.network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[key]), key
    energy = 150.0 + 0.5 * np.arange(2048)
    counts = np.random.default_rng(1).poisson(1e3 * (energy / 150.0) ** -3, size=(4, 2048)).astype(np.float32)
    a, b = original.predict(counts, energy), loaded.predict(counts, energy)
    np.testing.assert_array_equal(a["probability"], b["probability"])
    np.testing.assert_array_equal(a["onset_energy"], b["onset_energy"])


def test_format_2_models_load_with_two_inputs(tmp_path: Path) -> None:
    """A model saved before the readout-boundary input and the minor read-out families (format 2, neither ``inputs``
    nor ``families`` in its architecture) still loads and runs."""
    torch.manual_seed(4)
    two = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid(), width=16, hidden=16, evidence=8, input_channels=2, families=4),
                     list(ELEMENTS))
    two.save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["architecture"]["inputs"], config["architecture"]["families"]
    (tmp_path / "old" / "config.json").write_text(json.dumps({**config, "format_version": 2}))
    loaded = load_recogniser(tmp_path / "old")
    assert loaded.network.sizes["input_channels"] == 2 and loaded.network.sizes["families"] == 4 and not loaded.reads_sector_marks
    energy = 400.0 + 0.5 * np.arange(2048)
    counts = np.random.default_rng(2).poisson(1e3 * (energy / 400.0) ** -3, size=(3, 2048)).astype(np.float32)
    assert loaded.inputs(counts, energy).shape == (3, 2, ModelGrid().points)
    np.testing.assert_array_equal(loaded.predict(counts, energy)["probability"], two.predict(counts, energy)["probability"])


# --- bad model files --------------------------------------------------------------------------

@pytest.fixture()
def saved_model(tmp_path: Path) -> Path:
    return Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS), name="bad").save(tmp_path / "model")


def _corrupt_weights(folder: Path) -> None:
    (folder / "weights.safetensors").write_bytes(b"\x00\x17not a safetensors file" * 10)


def _corrupt_config(folder: Path) -> None:
    (folder / "config.json").write_text("{ this is not json")


def _other_version(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (folder / "config.json").write_text(json.dumps(config))


def _missing(folder: Path) -> None:
    (folder / "weights.safetensors").unlink()


@pytest.mark.parametrize(("damage", "words"), [
    (_missing, "no model here"), (_corrupt_weights, "corrupt"), (_corrupt_config, "corrupt"), (_other_version, "version"),
])
def test_bad_model_files_give_one_line_errors(saved_model: Path, instrument_dir: Path, damage, words: str) -> None:
    damage(saved_model)
    with pytest.raises(EelsbatchError, match=words):
        load_recogniser(saved_model)
    result = _run_cli("evaluate", "--model", str(saved_model), "--data", str(instrument_dir / "test-EELS_spectrum.dm3"))
    _assert_one_line_error(result, words)


def test_saved_config_records_the_weights_sha256(saved_model: Path) -> None:
    config = json.loads((saved_model / "config.json").read_text())
    digest = hashlib.sha256((saved_model / "weights.safetensors").read_bytes()).hexdigest()
    assert config["weights_sha256"] == digest == load_recogniser(saved_model).sha256
    assert "weights_sha256" not in load_recogniser(saved_model).info  # re-saving records the new file's hash, not this one


def test_models_saved_without_the_weights_sha256_still_load(saved_model: Path) -> None:
    config = json.loads((saved_model / "config.json").read_text())
    del config["weights_sha256"]
    (saved_model / "config.json").write_text(json.dumps(config))
    assert load_recogniser(saved_model).name == "bad"


def test_shipped_config_records_the_sha256_of_its_weights() -> None:
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["weights_sha256"] == hashlib.sha256((SHIPPED / "weights.safetensors").read_bytes()).hexdigest()


@pytest.fixture()
def flipped_model(tmp_path: Path) -> Path:
    """The shipped model with 64 bytes of its weights inverted in the middle of the file: the safetensors header is
    intact, so the file still parses, and only the recorded SHA-256 tells it from the original."""
    folder = Path(shutil.copytree(SHIPPED, tmp_path / "flipped"))
    data = bytearray((folder / "weights.safetensors").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(byte ^ 0xFF for byte in data[middle:middle + 64])
    (folder / "weights.safetensors").write_bytes(bytes(data))
    load_file(str(folder / "weights.safetensors"))  # still parseable: the damage is what the hash alone catches
    return folder


def test_weights_with_flipped_bits_are_refused_by_their_sha256(flipped_model: Path) -> None:
    with pytest.raises(EelsbatchError, match="do not match the SHA-256 recorded in config.json"):
        load_recogniser(flipped_model)


@pytest.mark.parametrize("command", ["map", "evaluate"])
def test_cli_with_flipped_weights_is_a_one_line_error(flipped_model: Path, tmp_path: Path, command: str) -> None:
    energy = 400.0 + 0.5 * np.arange(1024)
    spectra = np.random.default_rng(5).poisson(1e3 * (energy / 400.0) ** -3, size=(2, 2, 1024)).astype(np.float32)
    counts = xr.DataArray(spectra, dims=("y", "x", "energy"), coords={"energy": ("energy", energy, {"units": "eV"})})
    store = write_store(counts, tmp_path / "small.zarr")
    if command == "map":
        result = _run_cli("map", str(store), str(tmp_path / "maps.zarr"), "--model", str(flipped_model), "--workers", "1")
        assert not (tmp_path / "maps.zarr").exists()
    else:
        result = _run_cli("evaluate", "--model", str(flipped_model), "--data", str(store))
    _assert_one_line_error(result, str(flipped_model / "weights.safetensors"), "SHA-256")


def test_cli_window_missing_the_grid_is_a_one_line_error(saved_model: Path, tmp_path: Path) -> None:
    energy = 3500.0 + np.arange(256.0)
    counts = xr.DataArray(np.ones((2, 2, 256), np.float32), dims=("y", "x", "energy"),
                          coords={"energy": ("energy", energy, {"units": "eV"})})
    store = write_store(counts, tmp_path / "high.zarr")
    result = _run_cli("evaluate", "--model", str(saved_model), "--data", str(store))
    _assert_one_line_error(result, "misses the model grid")


def test_cli_window_narrower_than_the_model_reads_is_a_one_line_error(saved_model: Path, tmp_path: Path) -> None:
    """64 channels at 0.02 eV/ch (1.3 eV at 530 eV) cover fewer grid cells than the network can judge."""
    energy = 530.0 + 0.02 * np.arange(64.0)
    counts = xr.DataArray(np.ones((2, 2, 64), np.float32), dims=("y", "x", "energy"),
                          coords={"energy": ("energy", energy, {"units": "eV"})})
    store = write_store(counts, tmp_path / "narrow.zarr")
    result = _run_cli("evaluate", "--model", str(saved_model), "--data", str(store))
    _assert_one_line_error(result, "covers fewer than 8 cells of the model grid")


def test_cli_warns_in_one_line_where_the_dispersion_is_off_the_trained_range(instrument_dir: Path) -> None:
    """The real CuZn image is at 8 eV/channel, four times the coarsest the models are trained on: the elements found
    in its sum still print, after a one-line warning that names the file."""
    source = instrument_dir / "CuZn_EELS_mapping_tutorial.hspy"
    result = _run_cli("evaluate", "--model", str(SHIPPED), "--data", str(source))
    assert result.returncode == 0, result.stderr
    assert "elements found:" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    low, high = load_recogniser(SHIPPED).dispersion_range
    assert len(warning) == 1 and str(source) in warning[0] and f"outside the {low:g}-{high:g} eV/channel" in warning[0], result.stderr
    assert "Traceback" not in result.stderr


# --- the shipped model ---------------------------------------------------------------------------

def test_shipped_model_is_small_and_self_described(shipped: Recogniser) -> None:
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 20e6
    assert (SHIPPED / "MODEL_CARD.md").is_file()
    assert shipped.elements == list(ELEMENTS) and 0 < shipped.threshold < 1


@pytest.mark.parametrize("name", NOISE_ONLY)
def test_shipped_model_finds_nothing_in_noise_only_instrument_files(shipped: Recogniser, instrument_dir: Path, name: str) -> None:
    counts = open_spectrum_image(instrument_dir / name)
    spectra = counts.values.reshape(-1, counts.sizes["energy"])
    probability = shipped.predict(spectra, counts["energy"].values)["probability"]
    found = {shipped.elements[i] for i in np.flatnonzero(shipped.decide(probability).any(axis=0))}
    assert not found, f"{name}: {found}"


@pytest.mark.parametrize("signal", [14, 15, 16])
def test_shipped_model_finds_nothing_in_the_velox_noise_only_eels(shipped: Recogniser, velox_emd: Path, signal: int) -> None:
    counts = open_spectrum_image(velox_emd, signal=signal)  # flat counts about 100 per channel: no specimen signal
    spectra = counts.values.reshape(-1, counts.sizes["energy"]).astype(np.float32)
    reported = shipped.decide(shipped.predict(spectra, counts["energy"].values)["probability"])
    assert not reported.any(), f"signal {signal}: {int(reported.any(axis=1).sum())} of {len(spectra)} pixels report an element"


def test_evaluate_scores_a_labelled_store_as_the_recogniser_decides(shipped: Recogniser, tiny_store: Path, tmp_path: Path) -> None:
    """``evaluate`` on a synthetic store: its figures are those of the recogniser's own decisions against the labels,
    split by readout sectors, and it writes evaluation.json and evaluation.png."""
    group = zarr.open_group(str(tiny_store), mode="r")
    counts = group["spectrum"][:]
    energy = group["energy_offset"][:][:, None] + group["dispersion"][:][:, None] * np.arange(counts.shape[1])
    decided = shipped.decide(shipped.predict(counts, energy)["probability"])
    detectable, present = group["detectable"][:], group["elements"][:]
    correct = correct_sets(decided, detectable, present)
    result = _run_cli("evaluate", "--model", str(SHIPPED), "--data", str(tiny_store), "--out", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert (tmp_path / "eval" / "evaluation.png").stat().st_size > 10_000
    assert metrics["spectra"] == 96 and metrics["exact_match"] == pytest.approx(correct.mean())
    assert f"{correct.mean():.4f}" in result.stdout
    sectors = group["readout_sectors"][:]
    rows = {row["sectors"]: row for row in metrics["accuracy_vs_readout_sectors"]}
    assert set(rows) == set(np.unique(sectors).tolist())
    for n, row in rows.items():
        assert row["count"] == (sectors == n).sum() and row["accuracy"] == pytest.approx(correct[sectors == n].mean())
        edge_free = ~present.any(axis=1) & (sectors == n)
        assert row["no_element_with_a_false_element"] == decided[edge_free].any(axis=1).sum()
    assert sum(row["count"] for row in metrics["recall_vs_families_in_window"]) == detectable.sum()
    windows = np.stack([energy[:, 0], energy[:, -1]], axis=1)
    with_twin = twin_counts(detectable, present, windows, list(ELEMENTS)).any(axis=1)
    assert metrics["twins"]["spectra"] == with_twin.sum()
    assert metrics["twins"]["exact_match_elsewhere"] == pytest.approx(correct[~with_twin].mean())
    observer = group["observer_z"][:]
    rows = metrics["recall_vs_observer_z"]["by_observer_z"]
    assert sum(row["count"] for row in rows) == detectable.sum()
    for row in rows:
        inside = detectable & (observer >= row["low"]) & (observer < row["high"])
        assert row["count"] == inside.sum()
        assert row["recall"] == (pytest.approx(decided[inside].mean()) if inside.any() else None)
    dispersion = np.broadcast_to(group["dispersion"][:][:, None], detectable.shape)
    for row in metrics["recall_vs_observer_z"]["by_dispersion_from_z_10"]:
        inside = detectable & (observer >= 10) & (dispersion >= row["low"]) & (dispersion < row["high"])
        assert row["count"] == inside.sum()
    assert metrics["exact_match_observer_detectable"] == pytest.approx(correct_sets(decided, detectable & (observer >= 5), present).mean())
    assert "ideal-observer z" in result.stdout


def test_shipped_model_on_synthetic_spectra(shipped: Recogniser) -> None:
    """No element in spectra with no edge; Fe and O found in most strong Fe-O spectra, nothing else."""
    empty = generate(24, seed=4242, composition=[])
    energy = empty["energy_offset"][:, None] + empty["dispersion"][:, None] * np.arange(empty["spectrum"].shape[1])
    probability = shipped.predict(empty["spectrum"], energy)["probability"]
    assert (probability <= shipped.threshold).all(), np.array(shipped.elements)[(probability > shipped.threshold).any(axis=0)]

    window = (450.0, 0.25)  # 450-962 eV: O K (532 eV) and Fe L2,3 (708 eV)
    iron_oxide = generate(64, seed=4243, composition=["Fe", "O"], window=window)
    columns = [ELEMENTS.index("Fe"), ELEMENTS.index("O")]
    strong = iron_oxide["snr"][:, columns].min(axis=1) >= 20  # both edges at 4x the Rose limit or more
    assert strong.sum() >= 20
    energy = window[0] + window[1] * np.arange(iron_oxide["spectrum"].shape[1])
    result = shipped.predict(iron_oxide["spectrum"][strong], energy)
    found = result["probability"] > shipped.threshold
    # the shipped model finds Fe and O in at least 85 % of these, and nothing else
    assert found[:, columns].mean(axis=0).min() >= 0.85, found[:, columns].mean(axis=0)
    assert not np.delete(found, columns, axis=1).any()
    onset = result["onset_energy"][found[:, columns[1]], columns[1]]
    assert np.all(np.abs(onset - 532.0) < 15.0), onset


def test_read_out_windows_sit_on_the_tabulated_onsets() -> None:
    """Each element is read out around its own major-edge onsets, wide enough for shifts and calibration errors."""
    grid = ModelGrid()
    network = EdgeNet.build(list(ELEMENTS), grid)
    boundaries = grid.edges[:: EdgeNet.downsampling]

    def window(element: str, family: str) -> tuple[float, float]:
        i, j = ELEMENTS.index(element), FAMILIES.index(family)
        assert network.slot_valid[i, j]
        step, half = int(network.slot_step[i, j]), WINDOW_KERNELS[int(network.slot_kernel[i, j])] // 2
        return boundaries[step - half], boundaries[step + half + 1]

    for element, family, onset in [("O", "K", 532.0), ("C", "K", 283.8), ("Fe", "L2,3", 708.1), ("Si", "K", 1838.9), ("Si", "L2,3", 99.4)]:
        low, high = window(element, family)
        margin = WINDOW_MARGIN_EV + WINDOW_MARGIN_RELATIVE * onset
        assert low <= onset - margin and onset + margin <= high, (element, family, low, high)
        assert high - low < 6 * margin + 0.1 * onset, (element, family, low, high)  # and not much wider
    assert not network.slot_valid[ELEMENTS.index("O"), FAMILIES.index("L2,3")]  # O has no L2,3 edge on the grid


def test_read_out_takes_the_maximum_inside_each_window_and_its_step() -> None:
    """An onset just inside a slot's window is read with its step, one step outside is not; on any input each slot
    reads what max pooling of its width gives at its step, the first of equal maxima included."""
    network = EdgeNet.build(list(ELEMENTS), ModelGrid())
    steps = ModelGrid().points // EdgeNet.downsampling
    i, j = ELEMENTS.index("Fe"), FAMILIES.index("L2,3")
    step, half = int(network.slot_step[i, j]), WINDOW_KERNELS[int(network.slot_kernel[i, j])] // 2
    for offset, inside in [(0, True), (half, True), (-half, True), (half + 1, False), (-half - 1, False)]:
        probability = torch.zeros(1, steps)
        probability[0, step + offset] = 0.5
        peak, where = network.onset_windows(probability)
        assert float(peak[0, i, j]) == (0.5 if inside else 0.0), offset
        if inside:
            assert int(where[0, i, j]) == step + offset
    probability = torch.rand(8, steps, generator=torch.Generator().manual_seed(0)).round(decimals=1)  # with ties
    peak, where = network.onset_windows(probability)
    for (i, j) in network.slot_valid.nonzero().tolist():
        kernel, step = WINDOW_KERNELS[int(network.slot_kernel[i, j])], int(network.slot_step[i, j])
        pooled, index = torch.nn.functional.max_pool1d(probability[:, None], kernel, 1, kernel // 2, return_indices=True)
        assert torch.equal(peak[:, i, j], pooled[:, 0, step]) and torch.equal(where[:, i, j], index[:, 0, step]), (i, j)


def test_evidence_read_out_is_the_max_pool_of_each_slots_width_at_its_step() -> None:
    """Every valid slot reads, in every channel, what max pooling of its window's width gives at its step (ties and
    windows over the grid's ends included); a family with no edge on the grid reads 0; each read passes its gradient
    back whole."""
    network = EdgeNet.build(list(ELEMENTS), ModelGrid())
    steps = ModelGrid().points // EdgeNet.downsampling
    generator = torch.Generator().manual_seed(1)
    for values in (torch.rand(3, 5, steps, generator=generator).round(decimals=1), torch.randn(3, 5, steps, generator=generator)):
        values.requires_grad_(True)
        maxima = network._slot_maxima(values)
        assert maxima.shape == (3, *network.slot_step.shape, 5)
        for (i, j) in network.slot_valid.nonzero().tolist():
            kernel, step = WINDOW_KERNELS[int(network.slot_kernel[i, j])], int(network.slot_step[i, j])
            pooled = torch.nn.functional.max_pool1d(values, kernel, 1, kernel // 2)
            assert torch.equal(maxima[:, i, j], pooled[..., step]), (i, j)
        assert not maxima[:, ~network.slot_valid].any()
        maxima.sum().backward()
        assert float(values.grad.sum()) == pytest.approx(3 * 5 * int(network.slot_valid.sum()), rel=1e-6)


def test_fine_tuning_starts_from_a_saved_model(tiny_store: Path, tmp_path: Path) -> None:
    start = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS)).save(tmp_path / "start")
    tuned = train(tiny_store, tmp_path / "tuned", list(ELEMENTS), epochs=1, batch_size=32, validation_fraction=0.34,
                  threads=1, init_from=start, learning_rate=1e-9, chunks_per_epoch=1)
    initial = load_recogniser(start).network.state_dict()
    # a negligible learning rate: the fine-tuned weights are still the starting model's
    assert torch.allclose(tuned.network.lstm.weight_hh_l0, initial["lstm.weight_hh_l0"], atol=1e-6)
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["training"]["chunks_per_epoch"] == 1 and config["training"]["initialised_from"] == "start"


def test_widening_keeps_every_output(shipped: Recogniser) -> None:
    """The widened network computes what the trained one does, with more parameters to train; an added
    readout-boundary input or read-out family (L1, M2,3) starts with zero weights, so it changes nothing either."""
    rng = np.random.default_rng(3)
    inputs = torch.from_numpy(rng.normal(size=(6, 3, shipped.grid.points)).astype(np.float32))
    inputs[:, 1] = torch.from_numpy(rng.random((6, shipped.grid.points)) > 0.3)
    inputs[:, 2] = torch.from_numpy(rng.random((6, shipped.grid.points)) > 0.99)  # any marks
    sizes = shipped.network.sizes

    def built(**new_sizes: int) -> EdgeNet:
        return EdgeNet.build(shipped.elements, shipped.grid, **new_sizes)

    wide = widen(shipped.network, built(**{**sizes, "width": sizes["width"] + 16, "hidden": sizes["hidden"] + 8,
                                            "evidence": sizes["evidence"] + 8})).eval()
    torch.manual_seed(5)
    narrow = built(width=16, hidden=16, evidence=8, input_channels=2, families=4).eval()
    with_more = widen(narrow, built(width=16, hidden=16, evidence=8, input_channels=3, families=6)).eval()
    with torch.inference_mode():
        for narrow_output, wide_output in zip(shipped.network(inputs), wide(inputs)):
            assert torch.allclose(narrow_output, wide_output, atol=1e-4)
        for narrow_output, more_output in zip(narrow(inputs[:, :2]), with_more(inputs)):
            assert torch.allclose(narrow_output, more_output, atol=1e-5)
    assert with_more.slot_valid[:, 4:].any()  # the added families are read where the elements have such edges

    def count(network: EdgeNet) -> int:
        return sum(p.numel() for p in network.parameters())

    assert count(wide) == count(built(**wide.sizes)) > count(shipped.network)  # the new sizes, all of them trainable
    for smaller in ({"width": 8}, {"input_channels": 2}, {"families": 4}):
        with pytest.raises(ValueError, match="narrow"):
            widen(with_more, built(**{**with_more.sizes, **smaller}))
    with pytest.raises(ValueError, match="other slots"):
        widen(narrow, EdgeNet.build(shipped.elements[::-1], shipped.grid, width=16, hidden=16, evidence=8, input_channels=2, families=4))
    with pytest.raises(ValueError, match="read-out families"):
        built(families=5)


def test_fine_tuning_can_widen_the_starting_model(tiny_store: Path, tmp_path: Path) -> None:
    start = Recogniser(EdgeNet.build(list(ELEMENTS), ModelGrid()), list(ELEMENTS)).save(tmp_path / "start")
    tuned = train(tiny_store, tmp_path / "wide", list(ELEMENTS), epochs=1, batch_size=32, validation_fraction=0.34,
                  threads=1, init_from=start, learning_rate=1e-9, chunks_per_epoch=1, sizes={"hidden": 56})
    reloaded = load_recogniser(tmp_path / "wide")
    assert reloaded.network.sizes == {"width": 48, "hidden": 56, "evidence": 16, "input_channels": 3, "families": 6}
    inputs = torch.from_numpy(TrainingStore(tiny_store, list(ELEMENTS), ModelGrid(), EdgeNet.downsampling).read(0, 8).inputs)
    with torch.inference_mode():  # a negligible learning rate: the widened model still answers as the starting one
        assert torch.allclose(reloaded.network(inputs)[0], load_recogniser(start).network.eval()(inputs)[0], atol=1e-4)
    assert tuned.network.lstm.weight_hh_l0.shape == (4 * 56, 56)
    with pytest.raises(EelsbatchError, match="other elements"):
        train(tiny_store, tmp_path / "other", list(ELEMENTS)[:-1], epochs=1, init_from=start)
    with pytest.raises(EelsbatchError, match="cannot narrow"):
        train(tiny_store, tmp_path / "narrow", list(ELEMENTS), epochs=1, init_from=start, sizes={"width": 32})
