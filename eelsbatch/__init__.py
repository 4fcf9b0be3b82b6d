"""eelsbatch: core-loss edge recognition in every pixel of EELS spectrum images.

>>> import eelsbatch
>>> spectra = eelsbatch.open("sample.dm4")     # lazy DataArray, energy (eV) last
>>> maps = eelsbatch.identify(spectra)         # Dataset: probability, present, onset_energy, edge_intensity, valid

The API imports neither torch nor Dask's distributed until a model is loaded or a map is run, so that the command
line starts fast; importing it registers the ``.eels`` accessor of xarray DataArrays.
"""

from eelsbatch._api import as_spectra, identify, load_model, open, to_hyperspy
from eelsbatch._version import __version__
from eelsbatch.errors import EelsbatchError

__all__ = ["EelsbatchError", "__version__", "as_spectra", "identify", "load_model", "open", "to_hyperspy"]
