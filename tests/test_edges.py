"""The edge table: standard onsets, windows, and look-ups."""

from __future__ import annotations

import numpy as np
import pytest

from eelsbatch.edges import coincident_elements, edges_in_window, edges_of, element_of, load_edge_table, onset
from eelsbatch.errors import EelsbatchError


@pytest.mark.parametrize(
    ("element", "edge", "expected"),
    [("C", "K", 284), ("O", "K", 532), ("Fe", "L3", 708), ("Si", "K", 1839), ("Ti", "L2,3", 456), ("Ce", "M4,5", 883)],
)
def test_standard_onsets(element: str, edge: str, expected: float) -> None:
    assert onset(element, edge) == pytest.approx(expected, abs=1.0)


def test_window_lookup_finds_oxygen_and_iron_near_600_ev() -> None:
    names = {edge.name for edge in edges_in_window(500, 730, families=("K", "L2,3"))}
    assert {"O K", "Fe L3", "Fe L2", "Mn L3", "Cr L3"} <= names
    assert all(500 <= edge.onset_eV <= 720 for edge in edges_in_window(500, 720))


def test_every_row_is_in_range_and_cited() -> None:
    table = load_edge_table()
    assert len({edge.element for edge in table}) > 80
    assert all(50 <= edge.onset_eV <= 3000 and edge.source for edge in table)
    assert [edge.index for edge in table] == list(range(len(table)))
    assert element_of(edges_of("Cu")[0].index) == "Cu"


def test_unknown_element_is_a_clear_error() -> None:
    with pytest.raises(EelsbatchError, match="unknown element 'Xx'"):
        edges_of("Xx")


def test_coincident_edges_are_pairs_of_elements_whose_major_onsets_meet() -> None:
    elements = ["Cu", "Pr", "O", "Sb", "Fe", "Nd"]
    coincident = coincident_elements(elements, 12.0)
    pairs = {(elements[i], elements[j]) for i, j in zip(*np.nonzero(coincident)) if i < j}
    assert {("Cu", "Pr"), ("O", "Sb"), ("Pr", "Nd")} <= pairs  # 931 eV L3 / M5; 532 K / 528 M5; N4,5 113 / 118 eV
    assert ("Cu", "Fe") not in pairs and ("Cu", "Nd") not in pairs and not coincident.diagonal().any()
    assert (coincident == coincident.T).all()
