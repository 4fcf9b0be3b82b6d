"""Synthetic labelled core-loss EELS spectra: the forward model and its parallel writers.

- :func:`generate` simulates samples ``start .. start + n - 1`` of the data set ``seed`` (each
  sample seeded by ``(seed, index)``: identical whatever the chunking or the workers);
- :func:`write_training_set` writes ``n`` of them to a Zarr training store on a Dask client:
  ``spectrum`` (sample, channel) raw counts, per-sample ``energy_offset`` and ``dispersion``
  (energy = offset + dispersion * channel), ``elements`` and ``detectable`` (sample, element),
  ``snr`` and ``jump_ratio`` (sample, element), ``onset_label`` (sample, channel; edge-table index
  or -1) and every drawn parameter;
- :func:`write_spectrum_image` writes a structured spectrum image in ``convert``'s layout with
  ground-truth element maps ``truth`` (element, y, x).
"""

from eelsbatch.synth._elements import ELEMENTS, MATERIAL_SYSTEMS
from eelsbatch.synth._forward import DEFAULT_QUALITY, ROSE_SNR, STRONG, Quality, simulate
from eelsbatch.synth._generate import generate
from eelsbatch.synth._image import STRUCTURES, spectrum_image, write_spectrum_image
from eelsbatch.synth._store import training_dataset, write_training_set

__all__ = [
    "DEFAULT_QUALITY", "ELEMENTS", "MATERIAL_SYSTEMS", "ROSE_SNR", "STRONG", "Quality",
    "STRUCTURES", "generate", "simulate", "spectrum_image", "training_dataset", "write_spectrum_image",
    "write_training_set",
]
