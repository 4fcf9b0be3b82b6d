"""A HyperSpy user's session: load a real spectrum image, identify its edges, plot the maps, hand them back.

Run from the repository root: ``python examples/hyperspy_workflow.py [FILE]`` (default: the real spectrum image
``../shared/data/instrument/EELS_SI.dm4``; needs ``pip install hyperspy``). Writes ``hyperspy_maps.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hyperspy.api as hs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import eelsbatch  # noqa: E402

source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/instrument/EELS_SI.dm4")

# 1. The spectrum image as HyperSpy loads it.
signal = hs.load(source)
print(signal)

# 2. Identify the edges in every pixel (the shipped model; eager here, lazy for a lazily loaded signal).
maps = eelsbatch.identify(signal)
share = maps["present"].mean([d for d in maps["present"].dims if d != "element"])
found = [str(e) for e in share["element"].values if float(share.sel(element=e)) >= 0.01]
print("elements found:", ", ".join(f"{e} ({float(share.sel(element=e)):.0%} of pixels)" for e in found) or "none")

# 3. Plot each found element's probability and edge-intensity maps.
figure, axes = plt.subplots(len(found) or 1, 2, figsize=(8, 3 * max(len(found), 1)), squeeze=False)
for row, element in enumerate(found):
    for axis, name in zip(axes[row], ("probability", "edge_intensity")):
        maps[name].sel(element=element).plot(ax=axis, robust=name == "edge_intensity")
        axis.set_title(f"{element}: {name}")
figure.tight_layout()
figure.savefig("hyperspy_maps.png", dpi=80)
print("wrote hyperspy_maps.png")

# 4. Back to HyperSpy: one signal per map variable, the elements along the navigation axis.
signals = eelsbatch.to_hyperspy(maps)
probability = signals["probability"]
print(probability, "elements:", probability.metadata.Sample.elements[:5], "...")
