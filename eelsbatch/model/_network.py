"""The CNN-BiLSTM edge recogniser (after Kong, Ji and Xin, arXiv:2209.13026)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eelsbatch.edges import MAJOR_FAMILIES, load_edge_table

GATED_LOGIT = -20.0
GATE_MARGIN_EV = 12.0  # chemical shift (<= 4 eV) + energy offset error (<= 5 eV) + slack
GATE_MARGIN_RELATIVE = 0.01  # dispersion error (0.5 %) + slack


class EdgeNet(nn.Module):
    """Convolutional front end, bidirectional LSTM, and two heads.

    Input (batch, 2, points): normalised log intensity and the acquisition mask on the model grid; the
    network adds a third, fixed channel, the position on the grid (-1 to 1), so that it knows at which
    energy an edge starts and so which element it belongs to.
    Four strided convolutions shorten the sequence 16-fold; a BiLSTM reads it both ways; then

    - ``tags`` (batch, steps, elements + 1): per step, which element's edge starts there (class 0: none);
    - ``presence`` (batch, elements): logit that each element is present, from max- and mean-pooled
      features over the valid steps plus the strongest onset evidence of that element at any step.

    Parameters
    ----------
    elements
        Number of elements in the vocabulary.
    width
        Channels of the convolutional layers.
    hidden
        LSTM hidden size per direction.
    points
        Length of the input (the model grid).
    gate
        Optional onset gate from :func:`onset_gate`: the tag logit of an element is held at
        ``GATED_LOGIT`` on every step where the edge table has no onset of that element, so the
        network only tells apart the few elements whose edges can start at each energy.
    """

    downsampling = 16

    def __init__(self, elements: int, width: int = 48, hidden: int = 64, points: int = 1024, gate: torch.Tensor | None = None) -> None:
        super().__init__()
        if gate is not None:  # (steps, elements + 1) bool, saved with the weights
            self.register_buffer("gate", gate.clone())
        else:
            self.gate = None
        self.register_buffer("position", torch.linspace(-1.0, 1.0, points).reshape(1, 1, points), persistent=False)
        self.features = nn.Sequential(
            nn.Conv1d(3, width // 2, 7, stride=2, padding=3), nn.GELU(),
            nn.Conv1d(width // 2, width, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.GELU(),
        )
        self.lstm = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.tags = nn.Linear(2 * hidden, elements + 1)
        self.presence = nn.Sequential(nn.Linear(4 * hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, elements))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(presence_logits (batch, elements), tag_logits (batch, steps, elements + 1))``."""
        mask = nn.functional.max_pool1d(x[:, 1:2], self.downsampling).transpose(1, 2)  # (batch, steps, 1)
        x = torch.cat([x, self.position.expand(x.shape[0], 1, -1)], dim=1)
        steps, _ = self.lstm(self.features(x).transpose(1, 2))
        pooled_max = steps.masked_fill(mask == 0, -1e4).amax(dim=1)
        pooled_mean = (steps * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        tags = self.tags(steps)
        if self.gate is not None:
            tags = tags.masked_fill(~self.gate, GATED_LOGIT)
        evidence = tags[..., 1:].masked_fill(mask == 0, -1e4).amax(dim=1)
        return self.presence(torch.cat([pooled_max, pooled_mean], dim=1)) + evidence, tags


def onset_gate(grid_edges: np.ndarray, elements: list[str], downsampling: int) -> torch.Tensor:
    """Which element's edge may start on each network step, from the edge table.

    Parameters
    ----------
    grid_edges
        Cell boundaries of the model grid in eV (``ModelGrid.edges``).
    elements
        The model's element vocabulary.
    downsampling
        Grid cells per network step.

    Returns
    -------
    torch.Tensor
        (steps, elements + 1) bool: column 0 ("no onset") everywhere; column ``1 + i`` on the steps
        within ``GATE_MARGIN_EV + GATE_MARGIN_RELATIVE * onset`` of an onset of a major edge
        (K, L2,3, M4,5, N4,5) of element ``i``.
    """
    steps = (len(grid_edges) - 1) // downsampling
    step_low, step_high = grid_edges[:-1:downsampling][:steps], grid_edges[downsampling::downsampling][:steps]
    gate = np.zeros((steps, len(elements) + 1), bool)
    gate[:, 0] = True
    column = {element: 1 + i for i, element in enumerate(elements)}
    for edge in load_edge_table():
        if edge.family in MAJOR_FAMILIES and edge.element in column:
            margin = GATE_MARGIN_EV + GATE_MARGIN_RELATIVE * edge.onset_eV
            gate[:, column[edge.element]] |= (step_high >= edge.onset_eV - margin) & (step_low <= edge.onset_eV + margin)
    return torch.from_numpy(gate)
