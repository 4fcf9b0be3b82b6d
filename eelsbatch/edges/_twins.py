"""Twin elements: absent elements whose edges in a window look like a present element's.

In a window that holds only Ce's N4,5 edge (110 eV), a spectrum of Ce could as well be one of Pr (113 eV): a
chemical shift moves each element's edges by up to ``CHEMICAL_SHIFT_EV``, so two edges tabulated up to twice that
apart can land on the same energy, and both can have the same profile kind (:func:`profile_kinds`; the forward
model draws them so, with independent heights). No observer can then tell which element it is; the best guess is
right about once in as many candidates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from eelsbatch.edges._api import MAJOR_FAMILIES
from eelsbatch.edges._appearance import CHEMICAL_SHIFT_EV, family_edges, profile_kinds

TWIN_MARGIN_EV = 2 * CHEMICAL_SHIFT_EV  # two elements' edges this far apart in the table can show at one energy


ShownEdge = tuple[float, frozenset[str], bool]  # onset (eV), profile kinds, of a major family


@functools.cache
def _shown_onsets(element: str) -> tuple[ShownEdge, ...]:
    """Every edge of the element that shows in a spectrum (two per family at most)."""
    return tuple((edge.onset_eV, frozenset(profile_kinds(family, edge.Z)), family in MAJOR_FAMILIES)
                 for family, edges in family_edges(element).items() for edge in edges[:2])


def _in_window(element: str, low: float, high: float) -> list[ShownEdge]:
    return [edge for edge in _shown_onsets(element) if low <= edge[0] <= high]


def _all_matched(edges: list[ShownEdge], others: list[ShownEdge]) -> bool:
    """Whether every edge has one of ``others`` within ``TWIN_MARGIN_EV`` that can have the same profile kind."""
    return all(any(abs(onset - other) <= TWIN_MARGIN_EV and kinds & other_kinds for other, other_kinds, _ in others)
               for onset, kinds, _ in edges)


def _is_twin(own: list[ShownEdge], theirs: list[ShownEdge], specimen: list[ShownEdge]) -> bool:
    """Whether an element with edges ``theirs`` in the window could stand in for one with edges ``own`` in a specimen
    whose elements' edges there are ``specimen``."""
    return bool(own) and _all_matched(own, theirs) and _all_matched(theirs, specimen)


def window_twins(element: str, specimen: Sequence[str], low: float, high: float, elements: Sequence[str]) -> list[str]:
    """Elements that could stand in for ``element`` in a spectrum acquired from ``low`` to ``high`` eV.

    The twins of :func:`twin_counts` among ``elements``, with the other elements reported beside ``element``
    (``specimen``) in the specimen: a recogniser cannot tell them from ``element`` by their edges in this window.
    Another reported element can be a twin too: in a map, two look-alikes may each be reported in some pixels.

    Parameters
    ----------
    element
        The reported element.
    specimen
        The elements reported beside it (``element`` may be among them).
    low, high
        First and last acquired energy in eV.
    elements
        The candidates (a model's element list).
    """
    in_window = {name: _in_window(name, low, high) for name in {*elements, *specimen, element}}
    candidates = [name for name in elements if name != element and any(major for *_, major in in_window[name])]
    return [name for name in candidates
            if _is_twin(in_window[element], in_window[name], [edge for other in {*specimen, element} - {name} for edge in in_window[other]])]


def twin_counts(detectable: np.ndarray, present: np.ndarray, windows: np.ndarray, elements: Sequence[str]) -> np.ndarray:
    """How many twins each detectable element has in its spectrum's window.

    An absent element B is a twin of a detectable element A when B has a major edge (K, L2,3, M4,5, N4,5) in the
    window, so that it would be labelled present in A's place, every edge of A in the window has an edge of B
    within ``TWIN_MARGIN_EV`` that can have the same profile kind (:func:`~eelsbatch.edges.profile_kinds`), and
    every edge of B in the window has such a partner among the edges of A or of the specimen's other elements. Each
    shown family's first two edges count (the minor L1 and M2,3 edges too: any of them in the window can tell two
    elements apart).

    Parameters
    ----------
    detectable, present
        (spectra, elements) bool labels.
    windows
        (spectra, 2) first and last acquired energy in eV.
    elements
        Symbols of the columns; twins are sought among them.

    Returns
    -------
    numpy.ndarray
        (spectra, elements) int, zero where the element is not detectable or has no twin.
    """
    counts = np.zeros(np.shape(detectable), np.int64)
    for row in np.flatnonzero(np.any(detectable, axis=1)):
        in_window = [_in_window(element, *windows[row]) for element in elements]
        specimen = [edge for column in np.flatnonzero(present[row]) for edge in in_window[column]]
        candidates = [in_window[column] for column in np.flatnonzero(~present[row])
                      if any(major for *_, major in in_window[column])]
        for column in np.flatnonzero(detectable[row]):
            counts[row, column] = sum(_is_twin(in_window[column], theirs, specimen) for theirs in candidates)
    return counts


def even_guess_ceiling(twins: np.ndarray) -> float:
    """Exact element-set accuracy of an observer right on every spectrum but for twins, among which it guesses evenly.

    Parameters
    ----------
    twins
        (spectra, elements) :func:`twin_counts`.
    """
    return float(np.mean(np.prod(1.0 / (1.0 + twins), axis=1)))
