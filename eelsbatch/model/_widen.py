"""Function-preserving widening of a trained :class:`EdgeNet` (after Net2Net, Chen et al., ICLR 2016).

A wider network starts from a trained one with every output unchanged: each layer keeps its trained
weights between old units; the added units get the fresh layer's random weights into them and zero
weights out of them, so they change nothing until training moves those zeros. Training then uses
the added capacity without first having to relearn what the narrow network knew.
"""

from __future__ import annotations

import torch
from torch import nn

from eelsbatch.model._network import EdgeNet


def _copy_into(new: torch.Tensor, old: torch.Tensor, out_index: torch.Tensor, in_index: torch.Tensor | None) -> None:
    """Write ``old`` into ``new`` at rows ``out_index`` (and columns ``in_index``); zero the new columns of old rows."""
    with torch.no_grad():
        if in_index is None:
            new[out_index] = old
            return
        new[out_index] = 0.0
        new[out_index[:, None], in_index[None, :]] = old


def _conv(new: nn.Conv1d | nn.Linear, old: nn.Conv1d | nn.Linear, out_index: torch.Tensor, in_index: torch.Tensor) -> None:
    _copy_into(new.weight, old.weight, out_index, in_index)
    _copy_into(new.bias, old.bias, out_index, None)


def _joined_index(width: int, hidden: int, new_width: int, new_hidden: int) -> torch.Tensor:
    """Where the old network's joined channels (features, forward LSTM, backward LSTM) sit in the new one."""
    return torch.cat([torch.arange(width), new_width + torch.arange(hidden), new_width + new_hidden + torch.arange(hidden)])


def widen(network: EdgeNet, wide: EdgeNet) -> EdgeNet:
    """Copy a trained network into a wider fresh one so that it computes the same outputs.

    Parameters
    ----------
    network
        Trained network.
    wide
        Fresh network (:meth:`EdgeNet.build`, same elements and grid) whose sizes are each at least ``network``'s:
        an added input channel (the readout-sector boundaries) or read-out family (L1, M2,3) starts with zero
        weights out of it.

    Returns
    -------
    EdgeNet
        ``wide``, its weights set so that its outputs equal ``network``'s.

    Raises
    ------
    ValueError
        If ``wide`` is narrower in any size, or reads the shared families elsewhere on the grid.
    """
    old_sizes, new_sizes = network.sizes, wide.sizes
    if any(new_sizes[name] < size for name, size in old_sizes.items()):
        raise ValueError(f"cannot narrow a network: {old_sizes} -> {new_sizes}")
    families = old_sizes["families"]
    for name in ("slot_step", "slot_kernel", "slot_valid"):
        if not torch.equal(getattr(wide, name)[:, :families], getattr(network, name)) or wide.position.shape != network.position.shape:
            raise ValueError("the wider network reads other slots of the grid: it was built for other elements or another grid")
    width, hidden, evidence, channels = (new_sizes[name] for name in ("width", "hidden", "evidence", "input_channels"))
    w, h, e, i = old_sizes["width"], old_sizes["hidden"], old_sizes["evidence"], old_sizes["input_channels"]
    arange = torch.arange
    _conv(wide.front[0], network.front[0], arange(w // 2), torch.cat([arange(i), torch.tensor([channels])]))  # input channels, position
    _conv(wide.front[2], network.front[2], arange(w), arange(w // 2))
    _conv(wide.down[0], network.down[0], arange(w), arange(w))
    gate_rows = torch.cat([gate * hidden + arange(h) for gate in range(4)])  # input, forget, cell, output gates
    for suffix in ("", "_reverse"):
        _copy_into(getattr(wide.lstm, f"weight_ih_l0{suffix}"), getattr(network.lstm, f"weight_ih_l0{suffix}"), gate_rows, arange(w))
        _copy_into(getattr(wide.lstm, f"weight_hh_l0{suffix}"), getattr(network.lstm, f"weight_hh_l0{suffix}"), gate_rows, arange(h))
        for bias in ("bias_ih_l0", "bias_hh_l0"):
            _copy_into(getattr(wide.lstm, bias + suffix), getattr(network.lstm, bias + suffix), gate_rows, None)
    joined = _joined_index(w, h, width, hidden)
    _conv(wide.evidence[0], network.evidence[0], arange(e), joined)
    _conv(wide.onset, network.onset, arange(1), joined)
    _conv(wide.context, network.context, arange(wide.context.out_features), torch.cat([arange(h), hidden + arange(h)]))
    per_family = torch.cat([arange(e), torch.tensor([evidence, evidence + 1])])  # evidence channels, onset, valid
    slot_inputs = torch.cat([family * (evidence + 2) + per_family for family in range(families)])
    tail = new_sizes["families"] * (evidence + 2) + arange(network.presence[0].in_features - families * (e + 2))  # embedding, context
    _conv(wide.presence[0], network.presence[0], arange(network.presence[0].out_features), torch.cat([slot_inputs, tail]))
    _conv(wide.presence[2], network.presence[2], arange(1), arange(network.presence[2].in_features))
    with torch.no_grad():
        wide.element_embedding.copy_(network.element_embedding)
    return wide
