"""Where the work runs: a local Dask cluster, an existing scheduler, or SLURM through dask-jobqueue.

Every command that computes (``synth``, ``map``) takes the same :class:`ClusterOptions` and
runs its per-chunk functions on the client that :func:`open_client` yields, so the
executor can be swapped without touching the science. The options are in ``_options``, the client and the local
cluster in ``_local``, the SLURM jobs in ``_slurm`` (imported only for ``cluster="slurm"``); neither imports the
other's module.
"""

from eelsbatch.cluster._local import QuietClose, local_core_count, open_client
from eelsbatch.cluster._options import ALLOCATOR_ENVIRONMENT, ClusterKind, ClusterOptions

__all__ = ["ALLOCATOR_ENVIRONMENT", "ClusterKind", "ClusterOptions", "QuietClose", "local_core_count", "open_client"]
