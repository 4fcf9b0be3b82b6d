"""Acquisition ranges of the synthetic training spectra, which every eelsbatch model is trained on.

Kept apart from the forward model so that the recogniser can check an axis against them without importing it.
"""

DISPERSION_RANGE_EV = (0.05, 2.0)  # eV per channel, drawn log-uniform
