"""The CNN-BiLSTM edge recogniser: grid and normalisation, network, training, evaluation.

``load_recogniser(folder)`` returns a :class:`Recogniser` whose ``predict(counts, energy)`` gives,
for raw spectra on any acquisition axis, calibrated element probabilities and edge onsets.
"""

from eelsbatch.model._grid import ModelGrid
from eelsbatch.model._network import EdgeNet
from eelsbatch.model._recogniser import FORMAT_VERSION, Recogniser, load_recogniser
from eelsbatch.shipped import SHIPPED_MODEL

__all__ = ["FORMAT_VERSION", "SHIPPED_MODEL", "EdgeNet", "ModelGrid", "Recogniser", "load_recogniser"]
