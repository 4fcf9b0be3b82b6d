"""Train the recogniser on a synthetic training store: streamed, checkpointed, resumable."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from eelsbatch.errors import EelsbatchError, InputError
from eelsbatch.model._data import Batch, ChunkKey, ShuffledChunks, TrainingStores
from eelsbatch.model._grid import ModelGrid
from eelsbatch.model._metrics import THRESHOLD_FLOOR, exact_match, false_alarm_threshold, fit_temperature, scored_entries
from eelsbatch.model._network import EdgeNet
from eelsbatch.model._recogniser import COMPOSITION_SHARE, DISPERSION_RANGE, Recogniser, load_recogniser
from eelsbatch.model._widen import widen

CHECKPOINT = "checkpoint.pt"
ONSET_LOSS_WEIGHT = 0.3
ONSET_POSITIVE_WEIGHT = 10.0  # onset steps are rare (a few in 256)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_loader_workers(device: torch.device) -> int:
    """Loader processes: none on the CPU (they would take the training's cores), up to 8 to feed a GPU
    (two cores fewer than this process may run on, e.g. in a SLURM allocation)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return 0 if device.type == "cpu" else max(1, min(8, cores - 2))


def _losses(network: EdgeNet, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.from_numpy(batch.inputs).to(device)
    presence, onset = network(inputs)
    target = torch.from_numpy(batch.detectable).to(device)
    scored = torch.from_numpy(batch.scored()).to(device, torch.float32)  # present but undetectable: no loss either way
    presence_loss = (nn.functional.binary_cross_entropy_with_logits(presence, target, reduction="none") * scored).sum() / scored.sum()
    onset_target = torch.from_numpy(batch.tags > 0).to(device, torch.float32)
    onset_loss = nn.functional.binary_cross_entropy_with_logits(
        onset, onset_target, pos_weight=torch.tensor(ONSET_POSITIVE_WEIGHT, device=device)
    )
    return presence_loss, onset_loss


def initial_network(elements: list[str], grid: ModelGrid, init_from: str | Path | None = None,
                    sizes: dict[str, int] | None = None) -> EdgeNet:
    """A fresh network of ``sizes``, or the weights of the model ``init_from``, widened where ``sizes`` are larger.

    Raises
    ------
    EelsbatchError
        If ``init_from`` has other elements or another grid than the training, or larger sizes than ``sizes``.
    """
    if init_from is None:
        return EdgeNet.build(elements, grid, **(sizes or {}))
    start = load_recogniser(init_from)
    if start.elements != elements or start.grid != grid:
        raise InputError(init_from, "this model has other elements or another energy grid than the training")
    wanted = {**start.network.sizes, **(sizes or {})}
    if wanted == start.network.sizes:
        return start.network
    try:
        return widen(start.network, EdgeNet.build(elements, grid, **wanted))
    except ValueError as error:
        raise InputError(init_from, str(error)) from None


def validation_logits(recogniser: Recogniser, stores: TrainingStores, keys: list[ChunkKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Presence logits, detectable targets and present elements on the validation chunks."""
    logits, targets, present = [], [], []
    recogniser.network.eval()
    with torch.inference_mode():
        for batch in stores.batches(keys):
            for i in range(0, len(batch.inputs), 1024):
                presence, _ = recogniser.network(torch.from_numpy(batch.inputs[i : i + 1024]).to(recogniser.device))
                logits.append(presence.float().cpu().numpy())
            targets.append(batch.detectable > 0.5)
            present.append(batch.present)
    return np.concatenate(logits), np.concatenate(targets), np.concatenate(present)


def train(
    data: str | Path | Sequence[str | Path],
    output: str | Path,
    elements: list[str],
    epochs: int = 6,
    batch_size: int = 256,
    learning_rate: float = 2e-3,
    validation_fraction: float = 0.05,
    resume: bool = False,
    seed: int = 0,
    threads: int | None = None,
    name: str | None = None,
    init_from: str | Path | None = None,
    chunks_per_epoch: int | None = None,
    false_alarm_rate: float = 0.01,
    sizes: dict[str, int] | None = None,
    loader_workers: int | None = None,
) -> Recogniser:
    """Train an :class:`EdgeNet` on ``data`` and save it (weights, config, checkpoint) in ``output``.

    Parameters
    ----------
    data
        Training store from ``eelsbatch synth``, or several read as one (:class:`~eelsbatch.model._data.TrainingStores`).
    output
        Model folder (``models/NAME``).
    elements
        Element vocabulary.
    epochs, batch_size, learning_rate
        Optimisation schedule (AdamW, one-cycle learning rate).
    validation_fraction
        Share of each store's chunks held out for validation and calibration.
    resume
        Continue from ``output/checkpoint.pt``.
    seed
        Seed of initialisation and shuffling.
    threads
        Torch intra-op threads on the CPU (default: torch's choice).
    name
        Model name (default: the folder name).
    init_from
        Model folder whose weights initialise the network (fine-tuning; same grid and elements).
    chunks_per_epoch
        Train each epoch on this many training chunks drawn at random (default: all of them).
    false_alarm_rate
        The saved detection threshold is the lowest (at least ``THRESHOLD_FLOOR``) at which at most this share of the
        validation spectra with no element in the window report one.
    sizes
        Network sizes (``width``, ``hidden``, ``evidence``, ``input_channels``, ``families``); default: :class:`EdgeNet`'s,
        or ``init_from``'s, whose network is widened without changing its outputs (:func:`~eelsbatch.model._widen.widen`)
        where these are larger (``input_channels`` 3 adds the readout-sector marks to a network of 2).
    loader_workers
        Processes reading and preparing chunks ahead of the training step; default
        :func:`default_loader_workers`. The data and their order do not depend on it.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    device = _device()
    grid = ModelGrid()
    network = initial_network(list(elements), grid, init_from, sizes).to(device)
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    stores = TrainingStores(paths, elements, grid, network.downsampling, network.reads_sector_marks)
    train_keys, validation_keys = stores.split(validation_fraction)
    per_epoch = len(train_keys) if chunks_per_epoch is None else max(1, min(chunks_per_epoch, len(train_keys)))
    steps_per_epoch = per_epoch * -(-stores.chunk // batch_size)
    workers = default_loader_workers(device) if loader_workers is None else loader_workers
    chunks = ShuffledChunks(stores, train_keys, per_epoch, seed, workers)
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=epochs * steps_per_epoch)
    first_epoch, history = 0, []
    checkpoint = output / CHECKPOINT
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        first_epoch, history = state["epoch"], state["history"]
        if state["schedule"]["total_steps"] == schedule.total_steps:
            schedule.load_state_dict(state["schedule"])
        else:  # more epochs than the checkpointed run: a new one-cycle schedule over the added epochs
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimiser, max_lr=learning_rate, total_steps=max(1, (epochs - first_epoch) * steps_per_epoch)
            )
    recogniser = Recogniser(network, list(elements), grid, name=name or output.name)
    started, validation = time.time(), None
    for epoch in range(first_epoch, epochs):
        network.train()
        progress = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", unit="batch")
        for batch in chunks.epoch(epoch):  # per-epoch order: a resumed run sees the same
            for i in range(0, len(batch.inputs), batch_size):
                part = batch.take(slice(i, i + batch_size))
                presence_loss, onset_loss = _losses(network, part, device)
                loss = presence_loss + ONSET_LOSS_WEIGHT * onset_loss
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimiser.step()
                schedule.step()
                progress.update()
                progress.set_postfix(presence=f"{presence_loss.item():.4f}", onset=f"{onset_loss.item():.3f}")
        progress.close()
        validation = validation_logits(recogniser, stores, validation_keys)
        logits, targets, present = validation
        accuracy = exact_match(1 / (1 + np.exp(-logits)) > 0.5, targets, present)
        history.append({"epoch": epoch + 1, "validation_exact_match": accuracy, "seconds": time.time() - started})
        tqdm.write(f"epoch {epoch + 1}: validation exact element-set accuracy {accuracy:.4f}")
        torch.save({"network": network.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                    "epoch": epoch + 1, "history": history}, checkpoint)
    if validation is None:  # resumed after the last epoch: nothing was validated in this run
        validation = validation_logits(recogniser, stores, validation_keys)
    logits, targets, present = validation
    recogniser.temperature = fit_temperature(logits, targets, scored=scored_entries(targets, present))
    edge_free = int((~present.any(axis=1)).sum())
    recogniser.threshold = false_alarm_threshold(1 / (1 + np.exp(-logits / recogniser.temperature)), present, false_alarm_rate,
                                                 coincident=recogniser.coincident)
    # the training prior of each element, which real specimens' priors are weighed against (Recogniser.prior_ratio)
    prior = {COMPOSITION_SHARE: stores.composition_share} if stores.composition_share else {}
    recogniser.save(output, **prior, **{DISPERSION_RANGE: stores.dispersion_range()}, training={
        "data": ", ".join(Path(path).resolve().name for path in paths), "samples": stores.size, "validation_samples": int(len(targets)),
        "epochs": epochs, "chunks_per_epoch": per_epoch, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
        "device": str(device), "loader_workers": workers, "history": history,
        "initialised_from": None if init_from is None else Path(init_from).name,
    }, threshold_rule=f"lowest probability (at least {THRESHOLD_FLOOR:g}) at which at most {false_alarm_rate:.1%} of the {edge_free} "
                      "validation spectra with no element in the window report one")
    return recogniser
