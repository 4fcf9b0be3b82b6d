"""A trained edge recogniser: weights plus the grid, normalisation and element list they were trained with."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from eelsbatch.acquisition import DISPERSION_RANGE_EV
from eelsbatch.edges import coincident_elements
from eelsbatch.errors import EelsbatchError, InputError, ModelError
from eelsbatch.model._decision import report
from eelsbatch.model._device_inputs import DeviceInputs
from eelsbatch.model._grid import ModelGrid
from eelsbatch.model._network import FAMILIES, WINDOW_MARGIN_EV, EdgeNet
from eelsbatch.specimens import specimen_share

FORMAT_VERSION = 4  # 4: the architecture names its read-out families (4 or 6); 3: its input channels (2 or 3)
READABLE_VERSIONS = (2, 3, 4)  # version 2: two input channels; 2 and 3: the 4 major read-out families
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
WEIGHTS_SHA256 = "weights_sha256"  # config key: weights that do not hash to it are refused before they are parsed
CPU_BATCH = 64  # fastest on one CPU thread: the activations stay in cache (benchmarks/inference.py)
GPU_BATCH = 4096
# the architecture sizes that a saved config.json names otherwise (models on disk load unchanged)
SAVED_SIZE_NAMES = {"input_channels": "inputs"}
DISPERSION_SLACK = 0.01  # relative: a calibration a little off the trained range is still inside it
DISPERSION_RANGE = "dispersion_range_eV"  # config key: the training spectra's dispersions, eV/channel (min, max)
COMPOSITION_SHARE = "composition_share"  # config key: each element's share of the training compositions
MIN_TRAINED_SHARE = 1e-3  # an element (almost) never drawn in training is not given an unbounded prior ratio


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Recogniser:
    """Network plus everything needed to apply it to raw spectra.

    Attributes
    ----------
    network
        The :class:`EdgeNet`.
    elements
        Element symbols, in the order of the network's outputs.
    grid
        The model's energy grid.
    temperature
        Calibration temperature applied to the presence logits.
    threshold
        Default probability above which an element is reported present.
    name, sha256
        Model name and the SHA-256 of its weights file (provenance).
    info
        Further configuration (architecture, training parameters, metrics).
    """

    network: EdgeNet
    elements: list[str]
    grid: ModelGrid = field(default_factory=ModelGrid)
    temperature: float = 1.0
    threshold: float = 0.5
    name: str = "untrained"
    sha256: str = ""
    info: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> "Recogniser":
        """Move the network to ``device`` (``"cuda"`` on a GPU worker); returns self."""
        self.network.to(device)
        return self

    @functools.cached_property
    def coincident(self) -> np.ndarray:
        """(elements, elements) bool: element pairs whose read-out windows share an onset (within ``WINDOW_MARGIN_EV``)."""
        return coincident_elements(self.elements, WINDOW_MARGIN_EV)

    @functools.cached_property
    def prior_ratio(self) -> np.ndarray | None:
        """(elements,) how much more often each element is in a real specimen than in the model's training spectra.

        :func:`~eelsbatch.specimens.specimen_share` over the training store's ``composition_share`` (saved in the
        config); None for a model saved without it. Weighs the explanations of a coincident edge in :meth:`decide`.
        """
        trained = self.info.get(COMPOSITION_SHARE)
        if not trained:
            return None
        share = np.array([trained.get(element, 0.0) for element in self.elements])
        return specimen_share(self.elements) / np.maximum(share, MIN_TRAINED_SHARE)

    def decide(self, probability: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Which elements to report, from calibrated probabilities (:func:`~eelsbatch.model._decision.report`).

        An element is reported when its probability is above ``threshold``. Two elements with coincident
        edges (:attr:`coincident`) are two exclusive explanations of one edge, which the network may split
        between them: where neither is above the threshold but the two together are, the likelier one is
        reported (only if it is the likeliest of its unreported coincident elements); where both are above
        it, the less likely one is reported only from ``SECOND_EXPLANATION_PROBABILITY`` (0.75). Which of two is the
        likelier weighs each probability by the element's :attr:`prior_ratio`, so that real specimens' priors decide a tie.

        Parameters
        ----------
        probability
            (n, elements) calibrated probabilities from :meth:`predict`.
        threshold
            Presence threshold (default: the model's).

        Returns
        -------
        numpy.ndarray
            (n, elements) bool.
        """
        return report(probability, self.threshold if threshold is None else threshold, self.coincident, self.prior_ratio)

    @property
    def reads_sector_marks(self) -> bool:
        """Whether the network reads the readout-sector marks (:meth:`ModelGrid.readout_boundaries`, a third input channel)."""
        return self.network.reads_sector_marks

    def inputs(self, counts: np.ndarray, energy: np.ndarray, sector_starts: Sequence[int] | None = None) -> np.ndarray:
        """Network inputs (n, 2 or 3, points) for raw spectra on the acquisition axis ``energy``.

        ``sector_starts``: the detector's readout layout where known (:meth:`ModelGrid.readout_boundaries`).

        Raises
        ------
        EelsbatchError
            If the acquisition window misses the model grid.
        """
        return self.judged_inputs(counts, energy, sector_starts)[0]

    def judged_inputs(self, counts: np.ndarray, energy: np.ndarray,
                      sector_starts: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`inputs`, and (n,) bool: the spectra with enough usable cells to be judged (non-finite channels
        are not acquired, :meth:`ModelGrid.resample`; an all-NaN pixel is not judged, not an error)."""
        energy = self._checked_energy(energy)
        axes = energy if energy.ndim == 2 else energy[None]
        self.grid.check_coverage(np.stack([self.grid.window_cells(row) for row in axes]))
        inputs, mask = self.grid.inputs(counts, energy, self.reads_sector_marks, sector_starts)
        return inputs, self.grid.judged(mask)

    def _checked_energy(self, energy: np.ndarray) -> np.ndarray:
        energy = np.asarray(energy, dtype=np.float64)
        if energy.max() < self.grid.start_eV or energy.min() > self.grid.stop_eV:
            raise InputError(
                None, f"energy window {energy.min():.0f}-{energy.max():.0f} eV misses the model grid "
                f"({self.grid.start_eV:g}-{self.grid.stop_eV:g} eV)"
            )
        return energy

    def device_inputs(self, energy: np.ndarray, sector_starts: Sequence[int] | None = None) -> DeviceInputs:
        """Input preparation on the network's device for spectra sharing the axis ``energy`` (:class:`DeviceInputs`).

        Raises
        ------
        EelsbatchError
            If the acquisition window misses the model grid.
        """
        energy = self._checked_energy(energy)
        boundaries = self.grid.readout_boundaries(energy.size, energy, sector_starts)[0] if self.reads_sector_marks else None
        prepare = DeviceInputs(self.grid, energy, boundaries, self.device)
        self.grid.check_coverage(prepare.mask[None])
        return prepare

    def acquisition_warning(self, energy: np.ndarray) -> str | None:
        """Why the probabilities may not hold for spectra on the axis ``energy`` (channels,) in eV, or None.

        Models are trained on a range of dispersions (:attr:`dispersion_range`); on a coarser or finer axis their
        probabilities are extrapolated, not calibrated.
        """
        dispersion = float(np.median(np.diff(np.asarray(energy, np.float64))))
        low, high = self.dispersion_range
        if low * (1 - DISPERSION_SLACK) <= dispersion <= high * (1 + DISPERSION_SLACK):
            return None
        return (f"dispersion {dispersion:g} eV/channel is outside the {low:g}-{high:g} eV/channel the model was trained on: "
                "its probabilities are extrapolated there, not calibrated")

    @property
    def dispersion_range(self) -> tuple[float, float]:
        """eV/channel range of the training spectra (saved by ``train``; the forward model's default,
        ``DISPERSION_RANGE_EV``, for models saved without it)."""
        low, high = self.info.get(DISPERSION_RANGE, DISPERSION_RANGE_EV)
        return float(low), float(high)

    def step_energies(self) -> np.ndarray:
        """Energy (eV) at the centre of each network step."""
        downsampling = self.network.downsampling
        centres = np.arange(self.grid.points // downsampling) * downsampling + (downsampling - 1) / 2
        return np.exp(np.interp(centres, np.arange(self.grid.points), np.log(self.grid.energy)))

    def predict(self, counts: np.ndarray, energy: np.ndarray, batch_size: int | None = None,
                sector_starts: Sequence[int] | None = None, prepare_on_device: bool | None = None) -> dict[str, np.ndarray]:
        """Element probabilities and edge onsets for raw spectra.

        Parameters
        ----------
        counts
            (n, channels) counts, any intensity scale.
        energy
            (channels,) or (n, channels) channel energies in eV.
        batch_size
            Spectra per forward pass (default ``CPU_BATCH`` on the CPU, ``GPU_BATCH`` on a GPU).
        sector_starts
            Channels where the detector's readout sectors start, where known (a spectrum cropped before
            saving, an unusual port layout); default every start of 2 or 4 equal shares of the channels.
        prepare_on_device
            Rebin and normalise on the network's device (:meth:`device_inputs`) where all spectra share one
            axis; default: on a GPU, where the CPU would otherwise be the bottleneck.

        Returns
        -------
        dict
            ``probability`` (n, elements) float32, calibrated; ``onset_energy`` (n, elements) float32,
            the most likely onset of each element's edge in eV (NaN where the element has no onset
            probability anywhere in the window); ``valid`` (n,) bool, False for a spectrum with too few finite
            channels on the model grid to be judged (its probabilities and onsets NaN).
        """
        if prepare_on_device is None:
            prepare_on_device = self.device.type == "cuda"
        if prepare_on_device and np.ndim(energy) == 1 and np.isfinite(counts).all():  # the device path has no NaN masks
            result = self.predict_inputs(counts, batch_size, self.device_inputs(energy, sector_starts))
            return {**result, "valid": np.ones(len(counts), bool)}
        inputs, valid = self.judged_inputs(counts, energy, sector_starts)
        inputs[~valid] = 0.0  # NaN inputs of a spectrum not judged stay out of the network
        result = self.predict_inputs(inputs, batch_size)
        for values in result.values():
            values[~valid] = np.nan
        return {**result, "valid": valid}

    def predict_inputs(self, inputs: np.ndarray, batch_size: int | None = None,
                       prepare: DeviceInputs | None = None) -> dict[str, np.ndarray]:
        """As :meth:`predict`, from prepared network inputs (n, 2 or 3, points), or from raw counts (n, channels)
        that ``prepare`` turns into inputs on the device, a batch at a time."""
        batch_size = batch_size or (GPU_BATCH if self.device.type == "cuda" else CPU_BATCH)
        self.network.eval()
        step_energy = torch.from_numpy(self.step_energies().astype(np.float32))
        probabilities, onsets = [], []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(self.device)
                if prepare is not None:
                    batch = prepare(batch)
                presence, onset_logits = self.network(batch)
                probabilities.append(torch.sigmoid(presence / self.temperature).float().cpu().numpy())
                peak, step = self.network.onset_windows(torch.sigmoid(onset_logits.float()))
                peak, step = peak[..., :len(FAMILIES)].cpu(), step[..., :len(FAMILIES)].cpu()  # onsets of the major families
                # the lowest-energy family with a clear onset (families run K, L, M, N: high to low energy), else the strongest
                clear = (peak > 0.5).float()
                order = torch.arange(peak.shape[-1], dtype=peak.dtype)
                chosen = (clear * (100.0 + order) + peak).argmax(dim=-1, keepdim=True)
                onset = step_energy[step.gather(-1, chosen).squeeze(-1)]
                found = peak.amax(dim=-1) > 0.05
                onsets.append(torch.where(found, onset, torch.nan).numpy())
        return {"probability": np.concatenate(probabilities), "onset_energy": np.concatenate(onsets)}

    def save(self, folder: str | Path, **info: object) -> Path:
        """Write ``weights.safetensors`` and ``config.json`` into ``folder``.

        The config records the SHA-256 of the weights file as written, which :func:`load_recogniser` checks.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().cpu().contiguous() for key, value in self.network.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        self.sha256 = _sha256(folder / WEIGHTS)
        self.info.update(info)
        config = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "elements": self.elements,
            "grid": self.grid.to_dict(),
            "normalisation": "rebin to grid (counts per eV), divide by median over valid cells, log clipped at grid.floor, standardise over valid cells; second input channel is the mask; third (architecture.inputs 3) marks the grid cells holding a boundary between readout sectors (2 or 4 equal shares of the channels)",
            "architecture": {"class": "EdgeNet", **{SAVED_SIZE_NAMES.get(name, name): size for name, size in self.network.sizes.items()},
                             "downsampling": self.network.downsampling},
            "temperature": self.temperature,
            "threshold": self.threshold,
            **self.info,
            WEIGHTS_SHA256: self.sha256,  # last, so that nothing in info can stand in for the file's own hash
        }
        (folder / CONFIG).write_text(json.dumps(config, indent=2, default=float))
        return folder


def load_recogniser(folder: str | Path) -> Recogniser:
    """Load a recogniser saved by :meth:`Recogniser.save` (offline; nothing is fetched).

    Raises
    ------
    EelsbatchError
        If the folder or its files are missing, corrupt, or of another format version, or if the weights do not
        hash to the SHA-256 recorded in the config (models saved before it was recorded load unchecked).
    """
    folder = Path(folder)
    weights, config_file = folder / WEIGHTS, folder / CONFIG
    if not weights.is_file() or not config_file.is_file():
        raise ModelError(folder, f"no model here (expected {WEIGHTS} and {CONFIG})")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(config_file, "model configuration is corrupt (not JSON)") from None
    version = config.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelError(config_file, f"model format version {version!r}; this eelsbatch reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
    architecture = config["architecture"]
    grid = ModelGrid(**{key: value for key, value in config["grid"].items() if key != "spacing"})
    elements = list(config["elements"])
    try:
        network = EdgeNet.build(elements, grid, width=architecture["width"], hidden=architecture["hidden"],
                                evidence=architecture["evidence"], input_channels=architecture.get("inputs", 2),
                                families=architecture.get("families", len(FAMILIES)))
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(config_file, f"model configuration does not describe this network ({error.__class__.__name__}: {error})") from None
    sha256 = _sha256(weights)
    # Flipped bits can leave a file safetensors still parses, whose nonsense only shows later in the workers.
    if WEIGHTS_SHA256 in config and config[WEIGHTS_SHA256] != sha256:
        raise ModelError(weights, "model weights do not match the SHA-256 recorded in config.json (corrupt or altered)")
    try:
        network.load_state_dict(load_file(str(weights)))
    except (SafetensorError, RuntimeError, OSError) as error:
        raise ModelError(weights, f"model weights are corrupt or do not match the configuration ({error.__class__.__name__})") from None
    known = {"format_version", "name", "elements", "grid", "normalisation", "architecture", "temperature", "threshold",
             WEIGHTS_SHA256}
    return Recogniser(
        network=network.eval(), elements=elements, grid=grid,
        temperature=float(config["temperature"]), threshold=float(config["threshold"]), name=config["name"],
        sha256=sha256, info={key: value for key, value in config.items() if key not in known},
    )
