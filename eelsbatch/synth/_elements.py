"""Which elements the forward model draws, and the material systems it mixes them from."""

from __future__ import annotations

# The vocabulary of synthetic spectra and of the recogniser: elements with a major edge
# (K, L2,3, M4,5) between about 100 and 3000 eV that are commonly mapped by EELS.
ELEMENTS: tuple[str, ...] = (
    "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Sr", "Y", "Zr", "Nb", "Mo", "Ag", "In", "Sn", "Sb", "Te", "Ba", "La", "Ce", "Pr",
    "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Er", "Yb", "Hf", "Ta", "W", "Pt", "Au", "Pb", "Bi",
)

TRANSITION_METALS = ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")
RARE_EARTHS = ("La", "Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Er", "Yb")

# Common material systems: a drawn system contributes all its elements.
MATERIAL_SYSTEMS: tuple[tuple[str, ...], ...] = (
    *((metal, "O") for metal in TRANSITION_METALS),
    *((metal, "N") for metal in ("Ti", "V", "Cr", "Ga", "Al", "B", "Si", "Zr", "Nb")),
    *((metal, "C") for metal in ("Ti", "Si", "W", "Zr", "Hf", "Ta", "Nb", "B")),
    *((earth, "O") for earth in RARE_EARTHS),
    ("Sr", "Ti", "O"), ("Ba", "Ti", "O"), ("La", "Mn", "O"), ("La", "Al", "O"), ("Sr", "Fe", "O"),
    ("Ga", "As"), ("In", "P"), ("Si", "Ge"), ("Ga", "N"), ("Al", "Ga", "N"), ("In", "As"), ("Zn", "Te"),
    ("Si", "O"), ("Al", "O"), ("Mg", "O"), ("Hf", "O"), ("Zr", "O"), ("Y", "Zr", "O"), ("Ca", "F"), ("Na", "Cl"),
    ("Fe", "P", "O"), ("Cu", "In", "Se"), ("Bi", "Fe", "O"), ("Pb", "Ti", "O"), ("Sn", "O"), ("In", "Sn", "O"),
    ("Ag",), ("Au",), ("Pt",), ("Cu",), ("Ni",), ("Si",), ("C",), ("Mo", "S"), ("W", "Se"), ("Sb", "Te"), ("Ca", "C", "O"),
    ("K", "Cl"), ("Mg", "Al", "O"), ("Co", "Pt"), ("Fe", "Pt"), ("Nd", "Fe", "B"),
)
