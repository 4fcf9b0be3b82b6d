"""Core-loss edge onsets (K, L, M, N, O shells) between 50 and 3000 eV, with their source, and what follows from
them: how edges appear in a spectrum (:mod:`eelsbatch.edges._appearance`) and which elements' edges look alike in
an acquired window (:mod:`eelsbatch.edges._twins`).

Values: xraylib 4.3 (BSD-3-Clause), from Elam, Ravel and Sieber, Radiat. Phys. Chem. 63 (2002) 121;
regenerate with ``scripts/make_edge_table.py``.
"""

from eelsbatch.edges._api import (
    MAJOR_FAMILIES,
    Edge,
    coincident_elements,
    edges_in_window,
    edges_of,
    element_of,
    load_edge_table,
    onset,
)
from eelsbatch.edges._appearance import (
    CHEMICAL_SHIFT_EV,
    PROFILE_KINDS,
    ROSE_SNR,
    SHOWN_FAMILIES,
    family_edges,
    profile_kinds,
)
from eelsbatch.edges._twins import TWIN_MARGIN_EV, even_guess_ceiling, twin_counts, window_twins

__all__ = [
    "CHEMICAL_SHIFT_EV", "MAJOR_FAMILIES", "PROFILE_KINDS", "ROSE_SNR", "SHOWN_FAMILIES", "TWIN_MARGIN_EV", "Edge",
    "coincident_elements", "edges_in_window", "edges_of", "element_of", "even_guess_ceiling", "family_edges",
    "load_edge_table", "onset", "profile_kinds", "twin_counts", "window_twins",
]
