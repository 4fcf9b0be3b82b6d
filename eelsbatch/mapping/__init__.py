"""Per-pixel elemental edge maps: the per-chunk function, the maps store, and the run over a cluster."""

from eelsbatch.mapping._chunk import map_chunk
from eelsbatch.mapping._intensity import IntegrationWindow, edge_intensity, integration_onset, integration_window
from eelsbatch.mapping._run import MapPlan, MapSummary, execute_map, prepare_map, run_map

__all__ = ["IntegrationWindow", "MapPlan", "MapSummary", "edge_intensity", "execute_map", "integration_onset", "integration_window", "map_chunk", "prepare_map", "run_map"]
