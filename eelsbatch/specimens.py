"""What real specimens of EELS work are made of: the prior of each element being in a specimen.

The forward model draws compositions from these (``synth --real-acquisitions``), and the recogniser weighs the
two explanations of a coincident edge by how much likelier each element is in a real specimen than in its
training draws (:func:`~eelsbatch.model._decision.report`): O is in most real specimens, Sb, Pr or Tb in few.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Common real specimens, by class (a specimen contributes all its elements). A specimen listed twice (cobalt and
# manganese oxides, titania) is common in two classes. Lithium battery materials hold Li, which the recogniser does
# not name (UNLISTED) but whose K edge (55 eV) shows in their spectra.
REAL_SPECIMENS: tuple[tuple[str, ...], ...] = (
    # oxides
    ("Ti", "O"), ("Fe", "O"), ("Mn", "O"), ("Co", "O"), ("Ni", "O"), ("Cu", "O"), ("Zn", "O"), ("Cr", "O"),
    ("V", "O"), ("Al", "O"), ("Si", "O"), ("Mg", "O"), ("Zr", "O"), ("Hf", "O"), ("Ce", "O"), ("Sn", "O"),
    ("In", "Sn", "O"), ("Ga", "O"), ("Nb", "O"), ("W", "O"), ("Mo", "O"), ("Y", "Zr", "O"), ("Ca", "O"), ("Gd", "Ce", "O"),
    ("Fe", "Cr", "O"), ("Fe", "Ti", "O"), ("Ta", "O"), ("La", "O"), ("Sm", "Co", "O"), ("O",),
    # perovskites and other complex oxides
    ("Sr", "Ti", "O"), ("Ba", "Ti", "O"), ("La", "Mn", "O"), ("La", "Sr", "Mn", "O"), ("Pb", "Ti", "O"),
    ("Bi", "Fe", "O"), ("Ca", "Ti", "O"), ("La", "Al", "O"), ("Sr", "Fe", "O"), ("La", "Ni", "O"), ("Nd", "Ni", "O"),
    ("Y", "Ba", "Cu", "O"), ("La", "Co", "O"), ("Ba", "Zr", "O"), ("Pr", "Ni", "O"),
    # battery materials (Li and Na layered oxides, phosphates, spinels; electrolyte decomposition; anodes)
    ("Li", "Co", "O"), ("Li", "Ni", "Mn", "Co", "O"), ("Li", "Ni", "Co", "Al", "O"), ("Li", "Fe", "P", "O"), ("Li", "Mn", "O"),
    ("Li", "Ni", "Mn", "O"), ("Li", "Ti", "O"), ("Na", "Mn", "O"), ("Na", "Fe", "P", "O"), ("Li", "V", "P", "O"),
    ("Li", "P", "F", "O"), ("Li", "S"), ("Si",), ("C",),
    # nitrides and carbides
    ("Ti", "N"), ("Ga", "N"), ("Al", "N"), ("Si", "N"), ("B", "N"), ("Cr", "N"), ("Al", "Ga", "N"), ("In", "Ga", "N"),
    ("Ti", "Al", "N"), ("Si", "C"), ("Ti", "C"), ("W", "C"), ("B", "C"), ("Zr", "C"), ("Fe", "C"), ("Ti", "C", "N"),
    # metals and alloys
    ("Fe",), ("Cu",), ("Ni",), ("Al",), ("Ti",), ("Au",), ("Ag",), ("Pt",), ("Co",), ("Fe", "Ni"), ("Fe", "Cr", "Ni"),
    ("Ni", "Al"), ("Ti", "Al"), ("Cu", "Zn"), ("Co", "Pt"), ("Fe", "Pt"), ("Pt", "C"), ("Au", "C"), ("Al", "Cu"), ("Nd", "Fe", "B"),
    # semiconductors
    ("Si", "Ge"), ("Ga", "As"), ("In", "P"), ("In", "As"), ("Cu", "In", "Se"), ("Zn", "Te"), ("Ge", "Sb", "Te"), ("Si", "O", "N"),
    # minerals, ceramics, biominerals, salts
    ("Ca", "P", "O"), ("Ca", "C", "O"), ("Fe", "S"), ("Mo", "S"), ("Zn", "S"), ("Na", "Cl"), ("K", "Cl"), ("Ca", "F"),
    ("Mg", "Si", "O"), ("Al", "Si", "O"), ("Ca", "Si", "O"), ("Mg", "Al", "O"), ("Ba", "S", "O"), ("Ca", "S", "O"),
    ("K", "Al", "Si", "O"), ("C", "N", "O"), ("C", "O"),
)
# Elements of REAL_SPECIMENS outside every recogniser's element list, drawn (their edges show) but never labelled
UNLISTED = frozenset({"Li"})
CARBON_PROBABILITY = 0.2  # carbon beside a specimen: support film, contamination
OTHER_PROBABILITY = 0.1  # another element, any of the vocabulary: dopants, impurities, what the list leaves out
MAX_ELEMENTS = 4


def specimens_of(elements: Sequence[str]) -> list[tuple[str, ...]]:
    """The specimens of :data:`REAL_SPECIMENS` made only of ``elements`` (and of :data:`UNLISTED` elements)."""
    known = set(elements) | UNLISTED
    return [specimen for specimen in REAL_SPECIMENS if set(specimen) <= known and not set(specimen) <= UNLISTED]


def listed(specimen: Sequence[str]) -> list[str]:
    """The elements of ``specimen`` that a recogniser names (those not :data:`UNLISTED`)."""
    return [element for element in specimen if element not in UNLISTED]


def specimen_share(elements: Sequence[str]) -> np.ndarray:
    """(elements,) probability that each element is in a real specimen drawn as the forward model draws them.

    A specimen of :func:`specimens_of` ``elements``, equally likely; carbon beside it with ``CARBON_PROBABILITY``,
    then another element (any of ``elements``, equally likely) with ``OTHER_PROBABILITY``; neither added to a
    specimen of ``MAX_ELEMENTS`` already.
    """
    elements = list(elements)
    share = np.zeros(len(elements))
    for specimen in specimens_of(elements):
        inside = np.array([element in specimen for element in elements], float)
        with_carbon = inside.copy()
        if "C" in elements and "C" not in specimen and len(listed(specimen)) < MAX_ELEMENTS:
            with_carbon[elements.index("C")] = 1.0
            carbon = CARBON_PROBABILITY
        else:
            carbon = 0.0
        for members, chance in ((inside, 1 - carbon), (with_carbon, carbon)):
            other = OTHER_PROBABILITY / len(elements) if members.sum() < MAX_ELEMENTS else 0.0
            share += chance * (members + (1 - members) * other)
    return share / max(1, len(specimens_of(elements)))
