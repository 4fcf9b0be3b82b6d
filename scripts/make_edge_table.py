"""Regenerate ``eelsbatch/edges/edges.csv`` from xraylib (BSD-3-Clause).

xraylib's edge energies are those of W. T. Elam, B. D. Ravel and J. R. Sieber, "A new atomic database
for X-ray spectroscopic calculations", Radiat. Phys. Chem. 63 (2002) 121-128. They are physical facts
(absorption-edge onsets); this script only selects the edges between 50 and 3000 eV and writes them out.
Run in an environment with ``pip install xraylib``: ``python scripts/make_edge_table.py``.
xraylib is needed only here, never at run time.
"""

from __future__ import annotations

import csv
from pathlib import Path

import xraylib

SOURCE = "xraylib 4.3 (Elam, Ravel, Sieber 2002)"
SHELLS = ["K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "O2", "O3"]
FAMILY = {"L2": "L2,3", "L3": "L2,3", "M2": "M2,3", "M3": "M2,3", "M4": "M4,5", "M5": "M4,5",
          "N2": "N2,3", "N3": "N2,3", "N4": "N4,5", "N5": "N4,5", "N6": "N6,7", "N7": "N6,7", "O2": "O2,3", "O3": "O2,3"}
LOW_EV, HIGH_EV = 50.0, 3000.0
TARGET = Path(__file__).resolve().parents[1] / "eelsbatch" / "edges" / "edges.csv"


def main() -> None:
    """Write one row per edge with an onset in [50, 3000] eV, elements Li (Z=3) to U (Z=92)."""
    rows = []
    for z in range(3, 93):
        for shell in SHELLS:
            try:
                onset = xraylib.EdgeEnergy(z, getattr(xraylib, f"{shell}_SHELL")) * 1000.0
            except ValueError:  # the shell is not occupied for this element
                continue
            if LOW_EV <= onset <= HIGH_EV:
                rows.append({
                    "element": xraylib.AtomicNumberToSymbol(z), "Z": z, "edge": shell,
                    "family": FAMILY.get(shell, shell), "onset_eV": round(onset, 1), "source": SOURCE,
                })
    with TARGET.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} edges to {TARGET}")


if __name__ == "__main__":
    main()
