"""Core-loss edge onsets (K, L, M, N, O shells) between 50 and 3000 eV, with their source.

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

__all__ = ["MAJOR_FAMILIES", "Edge", "coincident_elements", "edges_in_window", "edges_of", "element_of", "load_edge_table", "onset"]
