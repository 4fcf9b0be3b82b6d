"""Per-pixel elemental edge maps: the per-chunk function, the maps store, and the run over a cluster."""

from eelsbatch.mapping._chunk import map_chunk
from eelsbatch.mapping._intensity import edge_intensity, integration_onset
from eelsbatch.mapping._run import MapSummary, run_map

__all__ = ["MapSummary", "edge_intensity", "integration_onset", "map_chunk", "run_map"]
