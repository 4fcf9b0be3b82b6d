"""Instrument files in, chunked self-describing Zarr stores out.

Readers come from RosettaSciIO (dispatch by file extension through ``rsciio.IO_PLUGINS``);
the store is an xarray Dataset in Zarr with a ``counts`` variable whose last dim is ``energy``.
"""

from eelsbatch.io._reader import list_signals, open_spectrum_image
from eelsbatch.io._store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    STORE_ID_ATTR,
    atomic_store,
    is_complete,
    is_eelsbatch_store,
    mark_complete,
    mark_incomplete,
    open_store,
    prepare_output,
    remove_store,
    store_id,
    write_store,
)

__all__ = [
    "COMPLETE_ATTR",
    "KIND_ATTR",
    "STORE_ID_ATTR",
    "atomic_store",
    "is_complete",
    "is_eelsbatch_store",
    "list_signals",
    "mark_complete",
    "mark_incomplete",
    "open_spectrum_image",
    "open_store",
    "prepare_output",
    "remove_store",
    "store_id",
    "write_store",
]
