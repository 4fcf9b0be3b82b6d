"""Chunked Zarr stores written through xarray, with a completeness marker written last."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import dask.array as da
import psutil
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from eelsbatch._version import __version__
from eelsbatch.errors import EelsbatchError, StoreError

if TYPE_CHECKING:  # importing distributed costs ~0.25 s at every convert start
    from distributed import Client

COMPLETE_ATTR = "eelsbatch_complete"
KIND_ATTR = "eelsbatch_kind"
STORE_ID_ATTR = "eelsbatch_store_id"  # new at every write: a map resumed on a rewritten input store is refused
TARGET_CHUNK_BYTES = 32 * 2**20
# Blosc LZ4 with bit shuffle: on noisy float32 spectra ~2.7x faster to compress, ~1.9x faster to
# decompress and ~20% smaller than Zarr's default (zstd level 0, no shuffle); see benchmarks/convert.py.
COUNTS_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")


def _group(path: Path, mode: str) -> zarr.Group:
    try:
        return zarr.open_group(str(path), mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError, OSError):
        raise StoreError(path, "is not a Zarr store") from None


def mark_complete(path: str | Path) -> None:
    """Mark the store at ``path`` complete and consolidate its metadata; call only once every array is fully written.

    The arrays' metadata, gathered into the root group, lets a plain ``xr.open_zarr(path)`` open the store in one
    read and without xarray's warning about unconsolidated metadata. It is written when no array changes any more;
    the completeness marker is an attribute of the root group, which readers always take from the root itself.
    """
    _group(Path(path), "r+").attrs[COMPLETE_ATTR] = True
    with warnings.catch_warnings():  # Zarr 3 says consolidated metadata is not (yet) part of its format specification
        warnings.filterwarnings("ignore", "Consolidated metadata is currently not part", zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(str(path))


def mark_incomplete(path: str | Path) -> None:
    """Mark the store at ``path`` as being written (nothing may trust it until :func:`mark_complete`)."""
    _group(Path(path), "r+").attrs[COMPLETE_ATTR] = False


def store_id(path: str | Path) -> str | None:
    """The id that :func:`write_store` gave the store at ``path`` (None for a store written without one)."""
    return _group(Path(path), "r").attrs.get(STORE_ID_ATTR)


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` is a Zarr store that its writer marked complete."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        return bool(_group(path, "r").attrs.get(COMPLETE_ATTR, False))
    except EelsbatchError:
        return False


def open_store(path: str | Path, kind: str = "spectrum_image") -> xr.Dataset:
    """Open a complete eelsbatch store lazily.

    Parameters
    ----------
    path
        The store folder.
    kind
        What the store must hold: ``"spectrum_image"`` (from ``convert`` or ``synth --spectrum-image``),
        ``"training_set"`` or ``"maps"``; ``None`` accepts any.

    Raises
    ------
    EelsbatchError
        If the path is missing, not a Zarr store, not complete, of another kind, or (for spectrum
        images) lacks a ``counts`` variable with an ``energy`` coordinate.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(path, "no such store")
    attrs = _group(path, "r").attrs
    if not attrs.get(COMPLETE_ATTR, False):
        raise StoreError(path, "store is not complete (interrupted or still being written)")
    if kind is not None and attrs.get(KIND_ATTR) != kind:
        raise StoreError(path, f"is not a {kind.replace('_', ' ')} store (it holds {attrs.get(KIND_ATTR, 'unknown data')})")
    dataset = xr.open_zarr(str(path), consolidated=False)
    if kind == "spectrum_image":
        if "counts" not in dataset or "energy" not in dataset["counts"].dims or "energy" not in dataset.coords:
            raise StoreError(path, "is not a spectrum image: no 'counts' variable with an 'energy' coordinate")
    return dataset


def is_eelsbatch_store(path: str | Path) -> bool:
    """Whether ``path`` is a store that eelsbatch wrote, complete or not: a Zarr group whose root names its kind."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        return KIND_ATTR in _group(path, "r").attrs
    except EelsbatchError:
        return False


def _refuse_to_replace(path: Path) -> None:
    """Refuse to remove ``path`` unless it is an eelsbatch store or an empty folder.

    ``--overwrite`` replaces what eelsbatch wrote, never a user's files: a folder of other files, a Zarr store of
    another program or a file named like a store (OUT.zarr) stays. A symbolic link is refused too: whether its
    target should be replaced is the user's call.
    """
    if path.is_symlink():
        raise StoreError(path, "exists and is a symbolic link; refusing to replace it")
    if path.is_dir() and (is_eelsbatch_store(path) or not any(path.iterdir())):
        return
    raise StoreError(path, "exists and is not an eelsbatch store; refusing to replace it")


def remove_store(path: str | Path) -> None:
    """Remove the eelsbatch store (or empty folder) at ``path``; nothing if there is nothing there.

    Raises
    ------
    EelsbatchError
        If ``path`` is anything else (see ``prepare_output``), which is left as it is.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        _refuse_to_replace(path)
        shutil.rmtree(path)


def prepare_output(path: Path, overwrite: bool) -> None:
    """Refuse an existing output without ``overwrite``, one that is not an eelsbatch store or an empty folder, or a
    folder that cannot be written."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise StoreError(path, "output exists (use --overwrite to replace it)")
        _refuse_to_replace(path)
    parent = path.parent
    if not parent.is_dir():
        raise StoreError(path, "cannot write output: its parent folder does not exist")
    probe = parent / f".{path.name}.probe-{uuid.uuid4().hex}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        raise StoreError(path, f"cannot write output ({error.strerror or error.__class__.__name__})") from None


def navigation_chunks(
    counts: xr.DataArray, chunks: Sequence[int] | None = None, target_bytes: int = TARGET_CHUNK_BYTES
) -> dict[str, int | tuple[int, ...]]:
    """Chunks that hold the whole energy axis and about ``target_bytes`` each (or the given sizes).

    Parameters
    ----------
    counts
        The spectrum image (``energy`` last).
    chunks
        Chunk sizes of the navigation dims, in order; default: automatic.
    target_bytes
        Size of an automatic chunk.
    """
    nav = [dim for dim in counts.dims if dim != "energy"]
    if chunks is not None:
        if len(chunks) != len(nav) or any(size < 1 for size in chunks):
            raise StoreError(None, f"chunks needs {len(nav)} positive sizes for dims {', '.join(nav) or '(none)'}")
        return {**dict(zip(nav, chunks)), "energy": counts.sizes["energy"]}
    normalized = da.core.normalize_chunks(
        ("auto",) * len(nav) + (-1,), counts.shape, limit=target_bytes, dtype=counts.dtype
    )
    return {dim: sizes for dim, sizes in zip(counts.dims, normalized)}


# A write goes to a hidden partial store beside its output, named after its writer: host (and PID namespace), process
# id and the process's start time. A writer that is killed (SIGKILL, the node lost) cannot remove its partial, so the
# next write to the same output removes the partials whose writer is gone. Gone means, on this host and in this PID
# namespace only, that no process has that id or that the one that has it started at another time (the id was
# reused). A writer on another host sharing the file system, or in another container, cannot be checked from here,
# and an old partial may still be in use (a long run), so neither host nor age ever marks a partial stale: it stays
# for its writer, or for the user, to remove.
PARTIAL_WRITER = re.compile(r"(?P<space>[\w.-]+)-(?P<pid>\d+)-(?P<started>\d+)-[0-9a-f]{8}")  # after ".NAME.partial-"


def _pid_space() -> str:
    """This host and PID namespace: a process id means something only within both (containers may share a host name)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc (not Linux): one namespace per host
        namespace = 0
    host = re.sub(r"[^\w.-]", "_", socket.gethostname())
    return f"{host}_{namespace}"


def _partial_prefix(output: Path) -> str:
    return f".{output.name}.partial-"


def _partial_path(output: Path) -> Path:
    started = int(psutil.Process().create_time())
    return output.parent / f"{_partial_prefix(output)}{_pid_space()}-{os.getpid()}-{started}-{uuid.uuid4().hex[:8]}"


def _writer_is_gone(space: str, pid: int, started: int) -> bool:
    """Whether the process that began a partial store is certainly no longer running."""
    if space != _pid_space():
        return False
    try:
        start_time = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # exists but cannot be inspected: assume it is the writer
        return False
    return abs(start_time - started) >= 2  # the name holds the start time truncated to seconds


def _remove_stale_partials(output: Path) -> None:
    """Remove the partial stores of ``output`` whose writer is gone (killed without cleaning up)."""
    prefix = _partial_prefix(output)
    for candidate in output.parent.glob(f"{glob.escape(prefix)}*"):
        writer = PARTIAL_WRITER.fullmatch(candidate.name[len(prefix):])  # none for an unknown writer: kept
        if writer and _writer_is_gone(writer["space"], int(writer["pid"]), int(writer["started"])):
            shutil.rmtree(candidate, ignore_errors=True)  # another writer may be removing it at the same time


@contextlib.contextmanager
def atomic_store(output: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary store path beside ``output``; on success mark it complete and move it into place.

    On any failure the temporary store is removed, so an interrupted write never leaves a store at
    ``output`` (and never one that looks complete). Temporary stores of writers that were killed before
    they could remove theirs are removed first.

    Parameters
    ----------
    output
        The store to create.
    overwrite
        Replace an existing ``output``.
    """
    output = Path(output)
    prepare_output(output, overwrite)
    _remove_stale_partials(output)
    temporary = _partial_path(output)
    try:
        yield temporary
        mark_complete(temporary)
        remove_store(output)  # checked again: the write may have taken hours, and the output changed meanwhile
        temporary.rename(output)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def write_store(
    counts: xr.DataArray,
    output: str | Path,
    chunks: Sequence[int] | None = None,
    overwrite: bool = False,
    extra: dict[str, xr.DataArray] | None = None,
    client: Client | None = None,
) -> Path:
    """Stream a spectrum image into a compressed, chunked Zarr store.

    The store is written under a hidden temporary name beside ``output``, marked complete, and only
    then moved into place, so an interrupted write never leaves a store that looks complete.

    Parameters
    ----------
    counts
        Lazy ``counts`` DataArray with ``energy`` last (from :func:`open_spectrum_image`).
    output
        The store to create.
    chunks
        Navigation chunk sizes; default about 32 MB per chunk, whole energy axis.
    overwrite
        Replace an existing ``output``.
    extra
        Further variables to store beside ``counts`` (e.g. ground-truth maps of synthetic data).
    client
        Dask client to compute on (default: threads in this process).

    Returns
    -------
    Path
        ``output``.
    """
    output = Path(output)
    counts = counts.chunk(navigation_chunks(counts, chunks))
    attrs = dict(counts.attrs)
    counts = counts.copy()
    counts.attrs = {"units": "counts", "long_name": "electron counts"}
    dataset = xr.Dataset({"counts": counts, **(extra or {})})
    dataset.attrs = {**attrs, "eelsbatch_version": __version__, KIND_ATTR: "spectrum_image", STORE_ID_ATTR: uuid.uuid4().hex,
                     COMPLETE_ATTR: False}
    try:
        with atomic_store(output, overwrite) as temporary:
            encoding = {"counts": {"compressors": [COUNTS_COMPRESSOR]}}
            if client is None:
                with dask.config.set(scheduler="threads"):
                    dataset.to_zarr(str(temporary), mode="w", consolidated=False, encoding=encoding, compute=True)
            else:
                delayed = dataset.to_zarr(str(temporary), mode="w", consolidated=False, encoding=encoding, compute=False)
                client.compute(delayed).result()
    except EelsbatchError:
        raise
    except Exception as error:  # a reader failing mid-stream: a corrupt or truncated input
        source = attrs.get("source_file", output)
        reason = str(error).splitlines()[0] if str(error) else ""
        raise StoreError(source, f"conversion failed while reading ({error.__class__.__name__}: {reason})") from None
    return output
