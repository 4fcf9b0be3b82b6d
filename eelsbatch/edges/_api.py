"""Look-ups in the edge table shipped as ``edges.csv`` beside this module."""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from eelsbatch.errors import EelsbatchError, InputError

# Edge families that carry most of the core-loss signal and that microscopists map with; the
# minor shells (L1, M1, M2,3, N1, N2,3, ...) are in the table too but are weak or broad.
MAJOR_FAMILIES = ("K", "L2,3", "M4,5", "N4,5")


@dataclass(frozen=True)
class Edge:
    """One ionisation edge: ``index`` is its row in the table (the label used in training data)."""

    index: int
    element: str
    Z: int
    edge: str
    family: str
    onset_eV: float
    source: str

    @property
    def name(self) -> str:
        """Element and shell, e.g. ``Fe L3``."""
        return f"{self.element} {self.edge}"


@functools.cache
def load_edge_table() -> tuple[Edge, ...]:
    """All edges in the table, ordered by atomic number and shell."""
    with files("eelsbatch.edges").joinpath("edges.csv").open(newline="") as handle:
        return tuple(
            Edge(i, row["element"], int(row["Z"]), row["edge"], row["family"], float(row["onset_eV"]), row["source"])
            for i, row in enumerate(csv.DictReader(handle))
        )


def coincident_elements(elements: Sequence[str], margin_eV: float) -> np.ndarray:
    """Pairs of elements with major edges that start within ``margin_eV`` of each other.

    By its onset alone such an edge could be either element's (Cu L2,3 and Pr M4,5 at 931 eV, O K and Sb M4,5,
    Co L2,3 and Ba M4,5, ...).

    Parameters
    ----------
    elements
        Element symbols.
    margin_eV
        Largest difference between two tabulated onsets (eV) that counts as coincident.

    Returns
    -------
    numpy.ndarray
        (len(elements), len(elements)) bool, symmetric, False on the diagonal.
    """
    onsets = [np.array([edge.onset_eV for edge in edges_of(element) if edge.family in MAJOR_FAMILIES]) for element in elements]
    coincident = np.zeros((len(elements), len(elements)), bool)
    for i, a in enumerate(onsets):
        for j, b in enumerate(onsets[:i]):
            coincident[i, j] = coincident[j, i] = bool(a.size and b.size and (np.abs(a[:, None] - b[None, :]) <= margin_eV).any())
    return coincident


def edges_in_window(low_eV: float, high_eV: float, families: tuple[str, ...] | None = None) -> list[Edge]:
    """Edges whose onset lies in ``[low_eV, high_eV]``, optionally only of the given families."""
    return [
        edge for edge in load_edge_table()
        if low_eV <= edge.onset_eV <= high_eV and (families is None or edge.family in families)
    ]


def edges_of(element: str) -> list[Edge]:
    """Edges of one element (symbol, e.g. ``"Fe"``).

    Raises
    ------
    EelsbatchError
        If the element has no edge in the table.
    """
    found = [edge for edge in load_edge_table() if edge.element == element]
    if not found:
        raise InputError(None, f"unknown element {element!r}: no core-loss edge between 50 and 3000 eV in the table")
    return found


def element_of(index: int) -> str:
    """Element symbol of the edge at row ``index``."""
    return load_edge_table()[index].element


def onset(element: str, edge: str) -> float:
    """Onset energy in eV of ``edge`` (shell such as ``"L3"``, or family such as ``"L2,3"``) of ``element``.

    A family gives its lowest onset (L3 for L2,3, M5 for M4,5).
    """
    matches = [e.onset_eV for e in edges_of(element) if edge in (e.edge, e.family)]
    if not matches:
        raise InputError(None, f"{element} has no {edge} edge between 50 and 3000 eV")
    return min(matches)
