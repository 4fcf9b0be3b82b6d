"""The CNN-BiLSTM edge recogniser (after Kong, Ji and Xin, arXiv:2209.13026), read out at tabulated edges."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from eelsbatch.edges import MAJOR_FAMILIES, edges_of
from eelsbatch.model._grid import ModelGrid

FAMILIES = tuple(MAJOR_FAMILIES)  # one read-out slot per major family: K, L2,3, M4,5, N4,5
# read-out families: the major ones, then the minor L1 and M2,3 edges that can tell apart two elements whose major
# edges coincide (Cu L1 at 1096 eV beside Cu L2,3 and Pr M4,5 at 931 eV); a network reads the first ``families`` of them
READOUT_FAMILIES = (*FAMILIES, "L1", "M2,3")
WINDOW_MARGIN_EV = 12.0  # chemical shift (<= 4 eV) + energy offset error (<= 5 eV) + slack
WINDOW_MARGIN_RELATIVE = 0.01  # dispersion error (0.5 %) + slack
WINDOW_KERNELS = (3, 5, 9, 17, 33)  # max-pool widths (steps) available to the read-out windows
PRIOR_LOGIT = -3.5  # initial presence logit: each element is in a few % of the training spectra


def edge_slots(grid_edges: np.ndarray, elements: list[str], downsampling: int,
               families: int = len(READOUT_FAMILIES)) -> dict[str, torch.Tensor]:
    """Where, on the network's steps, each element's edges of each read-out family can start (from the edge table).

    Parameters
    ----------
    grid_edges
        Cell boundaries of the model grid in eV (``ModelGrid.edges``).
    elements
        The model's element vocabulary.
    downsampling
        Grid cells per network step.
    families
        How many of ``READOUT_FAMILIES`` to read out: 4 (the major families) or 6 (and L1, M2,3).

    Returns
    -------
    dict
        ``slot_step`` (elements, families) int64: the step holding the family's lowest onset;
        ``slot_kernel`` (elements, families) int64: index into ``WINDOW_KERNELS`` of the narrowest
        window covering ``WINDOW_MARGIN_EV + WINDOW_MARGIN_RELATIVE * onset`` either side;
        ``slot_valid`` (elements, families) bool: the family has an edge on the grid.
    """
    steps = (len(grid_edges) - 1) // downsampling
    boundaries = grid_edges[::downsampling][: steps + 1]
    shape = (len(elements), families)
    slot_step, slot_kernel, slot_valid = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, bool)
    for i, element in enumerate(elements):
        for j, family in enumerate(READOUT_FAMILIES[:families]):
            onsets = [edge.onset_eV for edge in edges_of(element) if edge.family == family]
            if not onsets or not boundaries[0] <= min(onsets) < boundaries[-1]:
                continue
            onset = min(onsets)
            margin = WINDOW_MARGIN_EV + WINDOW_MARGIN_RELATIVE * onset
            step = int(np.searchsorted(boundaries, onset, side="right") - 1)
            low = int(np.searchsorted(boundaries, onset - margin, side="right") - 1)
            high = int(np.searchsorted(boundaries, onset + margin, side="right") - 1)
            half_width = max(step - low, high - step)
            slot_step[i, j], slot_valid[i, j] = step, True
            slot_kernel[i, j] = next((k for k, size in enumerate(WINDOW_KERNELS) if size // 2 >= half_width), len(WINDOW_KERNELS) - 1)
    return {name: torch.from_numpy(value) for name, value in
            {"slot_step": slot_step, "slot_kernel": slot_kernel, "slot_valid": slot_valid}.items()}


class EdgeNet(nn.Module):
    """Convolutional front end, bidirectional LSTM, per-step edge evidence read out at the edge table.

    Input (batch, input_channels, points): normalised log intensity, the acquisition mask and (``input_channels`` 3)
    the readout-sector marks on the model grid (:meth:`ModelGrid.inputs`); the network adds a fixed
    channel, the position on the grid (-1 to 1).
    Two strided convolutions give per-step features at a quarter of the grid's resolution; a third
    halves it again for a bidirectional LSTM that reads the whole window both ways; its output, brought
    back to the quarter-resolution steps, joins the convolutional features to give ``evidence``
    channels per step (non-negative, zero where the step is not acquired) and the onset logit. Then

    - ``onset`` (batch, steps): logit that a detectable edge starts in the step;
    - ``presence`` (batch, elements): logit that each element is present, from the evidence max-pooled
      and the onset probability over a window around each of the element's tabulated onsets (one slot per read-out family,
      windows wide enough for chemical shifts and calibration errors), whether each slot lies in the
      acquired window, an element embedding and the pooled LSTM state, through a small network
      shared by all elements. Element identity thus comes from the edge table, not from learning
      which energy belongs to which element.

    Parameters
    ----------
    slots
        Read-out positions from :func:`edge_slots` (saved with the weights).
    width, hidden, evidence
        Convolution channels, LSTM hidden size per direction, evidence channels per step.
    input_channels
        Input channels: 2 (intensity, mask) or 3 (and the readout-sector marks); ``inputs`` in a saved config.json.
    points
        Length of the input (the model grid).
    """

    downsampling = 4

    def __init__(self, slots: dict[str, torch.Tensor], width: int = 48, hidden: int = 48, evidence: int = 16, points: int = 1024,
                 input_channels: int = 3) -> None:
        super().__init__()
        if input_channels not in (2, 3):
            raise ValueError(f"input channels must be 2 or 3, not {input_channels}")
        for name, value in slots.items():
            self.register_buffer(name, value.clone())
        elements, families = self.slot_step.shape
        self.sizes = {"width": width, "hidden": hidden, "evidence": evidence, "input_channels": input_channels, "families": families}
        self.register_buffer("position", torch.linspace(-1.0, 1.0, points).reshape(1, 1, points), persistent=False)
        self.front = nn.Sequential(
            nn.Conv1d(input_channels + 1, width // 2, 7, stride=2, padding=3), nn.GELU(),
            nn.Conv1d(width // 2, width, 5, stride=2, padding=2), nn.GELU(),
        )
        self.down = nn.Sequential(nn.Conv1d(width, width, 5, stride=2, padding=2), nn.GELU())
        self.lstm = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.evidence = nn.Sequential(nn.Conv1d(width + 2 * hidden, evidence, 1), nn.Softplus())
        self.onset = nn.Conv1d(width + 2 * hidden, 1, 1)
        self.element_embedding = nn.Parameter(0.1 * torch.randn(elements, 16))
        self.context = nn.Linear(2 * hidden, 16)
        self.presence = nn.Sequential(
            nn.Linear(families * (evidence + 2) + 32, 64), nn.GELU(), nn.Linear(64, 1),
        )
        nn.init.constant_(self.presence[-1].bias, PRIOR_LOGIT)

    @property
    def reads_sector_marks(self) -> bool:
        """Whether the input has the third channel, the readout-sector marks (:meth:`ModelGrid.inputs`)."""
        return self.sizes["input_channels"] == 3

    @classmethod
    def build(cls, elements: list[str], grid: ModelGrid, families: int = len(READOUT_FAMILIES), **sizes: int) -> "EdgeNet":
        """A network for ``elements`` on ``grid``, its read-out slots (of the first ``families`` of
        ``READOUT_FAMILIES``) taken from the edge table."""
        if families not in (len(FAMILIES), len(READOUT_FAMILIES)):
            raise ValueError(f"read-out families must be {len(FAMILIES)} or {len(READOUT_FAMILIES)}, not {families}")
        return cls(edge_slots(grid.edges, elements, cls.downsampling, families), points=grid.points, **sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(presence_logits (batch, elements), onset_logits (batch, steps))``."""
        batch = x.shape[0]
        mask = nn.functional.max_pool1d(x[:, 1:2], self.downsampling)  # (batch, 1, steps)
        steps = mask.shape[-1]
        features = self.front(torch.cat([x, self.position.expand(batch, 1, -1)], dim=1))  # (batch, width, steps)
        sequence, _ = self.lstm(self.down(features).transpose(1, 2))  # (batch, steps / 2, 2 hidden)
        context = self.context(sequence.amax(dim=1))
        # the evidence and onset heads are 1x1 convolutions over the features joined with the LSTM output brought
        # back to the steps; computed as the features' part plus the LSTM's part at its own (half) resolution,
        # the same numbers without building the joined tensor
        weight = torch.cat([self.evidence[0].weight, self.onset.weight])[..., 0]  # (evidence + 1, width + 2 hidden)
        width = features.shape[1]
        heads = nn.functional.conv1d(features, weight[:, :width, None], torch.cat([self.evidence[0].bias, self.onset.bias]))
        heads = heads + nn.functional.linear(sequence, weight[:, width:]).transpose(1, 2).repeat_interleave(2, dim=2)[..., :steps]
        onset = heads[:, -1:]  # (batch, 1, steps)
        evidence = torch.cat([self.evidence[1](heads[:, :-1]), torch.sigmoid(onset)], dim=1) * mask  # (batch, channels + 1, steps)
        read = self._slot_maxima(evidence)  # (batch, elements, families, channels + 1)
        valid = self._slot_maxima(mask)
        slots = torch.cat([read * valid, valid], dim=-1).flatten(2)  # (batch, elements, families * (channels + 2))
        elements = self.slot_step.shape[0]
        shared = torch.cat([slots, self.element_embedding.expand(batch, -1, -1), context[:, None].expand(-1, elements, -1)], dim=-1)
        return self.presence(shared).squeeze(-1), onset.squeeze(1)

    def onset_windows(self, onset_probability: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Strongest onset probability, and its step (the first of equal maxima, as ``max_pool1d`` gives), in each
        element's read-out windows.

        Parameters
        ----------
        onset_probability
            (batch, steps).

        Returns
        -------
        (peak, step), each (batch, elements, families); zero where the family has no edge on the grid.
        """
        peak = onset_probability.new_zeros(len(onset_probability), self.slot_step.numel())
        step = torch.zeros_like(peak, dtype=torch.int64)
        for slots, kernel, windows in self._slot_window_groups(onset_probability[:, None]):
            peak[:, slots], offset = windows[:, 0].max(dim=-1)
            step[:, slots] = self.slot_step.reshape(-1)[slots] - kernel // 2 + offset
        return peak.reshape(-1, *self.slot_step.shape), step.reshape(-1, *self.slot_step.shape)

    def _slot_maxima(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, steps) -> (batch, elements, families, channels): the maximum over each slot's window,
        zero where the family has no edge on the grid.

        A sparse table: the maxima over 2, 4, 8, ... steps from every step, each window's maximum that of the two
        power-of-two spans that cover it from its two ends. The steps run along the first axis, so that each slot
        reads two whole rows of ``batch * channels`` values."""
        batch, channels, _ = x.shape
        half = WINDOW_KERNELS[-1] // 2
        table = nn.functional.pad(x, (half, half), value=-torch.inf).permute(2, 0, 1).reshape(-1, batch * channels)
        widths = self.slot_kernel.new_tensor(WINDOW_KERNELS)[self.slot_kernel.reshape(-1)]
        starts = self.slot_step.reshape(-1) - widths // 2 + half
        span, parts, order = 1, [], []
        while 2 * span <= WINDOW_KERNELS[-1]:
            table, span = torch.maximum(table[:-span], table[span:]), 2 * span  # maxima over ``span`` steps
            slots = torch.nonzero((widths >= span) & (widths < 2 * span)).squeeze(1)
            parts.append(torch.maximum(table.index_select(0, starts[slots]), table.index_select(0, starts[slots] + widths[slots] - span)))
            order.append(slots)
        maxima = torch.cat(parts).index_select(0, torch.argsort(torch.cat(order)))
        maxima = torch.where(self.slot_valid.reshape(-1, 1), maxima, maxima.new_zeros(()))
        return maxima.reshape(*self.slot_step.shape, batch, channels).permute(2, 0, 1, 3)

    def _slot_window_groups(self, x: torch.Tensor) -> Iterator[tuple[torch.Tensor, int, torch.Tensor]]:
        """For each window width: the valid slots of that width (indices into the flattened slots), the width, and
        their windows of ``x`` (batch, channels, steps) as (batch, channels, slots, width), steps off the grid -inf.
        Only the slots' windows are gathered, all of one width at once."""
        half = WINDOW_KERNELS[-1] // 2
        padded = nn.functional.pad(x, (half, half), value=-torch.inf)
        steps, kernels, valid = self.slot_step.reshape(-1), self.slot_kernel.reshape(-1), self.slot_valid.reshape(-1)
        for index, kernel in enumerate(WINDOW_KERNELS):
            slots = torch.nonzero(valid & (kernels == index)).squeeze(1)
            windows = padded[..., half - kernel // 2 : padded.shape[-1] - half + kernel // 2].unfold(-1, kernel, 1)
            yield slots, kernel, windows[:, :, steps[slots]]
