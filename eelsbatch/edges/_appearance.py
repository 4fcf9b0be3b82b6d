"""How the tabulated edges appear in a core-loss spectrum: which families show, the profile kinds of each, how far a
chemical shift moves them, and when an edge counts as detectable.

These are facts about edges that the forward model (:mod:`eelsbatch.synth`) draws spectra from and that the
recogniser's evaluation and the maps' look-alikes (:mod:`eelsbatch.edges._twins`) reason with; both import them
from here, so that neither has to import the other.
"""

from __future__ import annotations

import functools

from eelsbatch.edges._api import MAJOR_FAMILIES, Edge, edges_of

# Edge families that show in a core-loss spectrum: the major ones, then the minor L1 and M2,3 edges, weak but sharp
# enough to tell apart two elements whose major edges coincide. Each shows as its two lowest edges (L3 and L2, M5 and M4).
SHOWN_FAMILIES = (*MAJOR_FAMILIES, "L1", "M2,3")
CHEMICAL_SHIFT_EV = 4.0  # largest chemical shift of an element's edges from the table
ROSE_SNR = 5.0  # an edge is detectable from this signal-to-noise ratio on (the Rose criterion)

# the profile kinds an edge can have: a sharp rise (sawtooth, white lines) or a delayed maximum, short to long
PROFILE_KINDS = ("sawtooth", "white lines", "short delay", "delayed", "long delay")


@functools.cache
def family_edges(element: str) -> dict[str, tuple[Edge, ...]]:
    """The element's edges of the ``SHOWN_FAMILIES``, grouped by family, lowest onset first."""
    groups: dict[str, list[Edge]] = {}
    for edge in edges_of(element):
        if edge.family in SHOWN_FAMILIES:
            groups.setdefault(edge.family, []).append(edge)
    return {family: tuple(sorted(edges, key=lambda e: e.onset_eV)) for family, edges in groups.items()}


def profile_kinds(family: str, z: int) -> tuple[str, ...]:
    """Profile kinds (of ``PROFILE_KINDS``) an edge family of element ``z`` can have; the forward model draws one of them.

    Sawtooth for K and L1; white lines for the L2,3 edges of K..Ni and the M4,5 edges of Cs..Lu (Cu L2,3: white
    lines or delayed, even odds); a short delay for the L2,3 edges of the light elements, a long one for the
    M4,5 edges from Hf; a delayed maximum for the others (M4,5 of 4d/5d, N4,5, M2,3, L2,3 beyond Cu).
    """
    if family in ("K", "L1"):
        return ("sawtooth",)
    if family == "L2,3" and z < 19:
        return ("short delay",)
    if (family == "L2,3" and z <= 28) or (family == "M4,5" and 55 <= z <= 71):
        return ("white lines",)
    if family == "L2,3" and z == 29:
        return ("white lines", "delayed")
    if family == "M4,5" and z >= 72:
        return ("long delay",)
    return ("delayed",)
