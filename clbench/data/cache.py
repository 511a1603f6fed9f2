"""The memory-mapped dataset cache behind ``storage: memmap``: decode once, then read from disk.

A dataset's arrays (inputs, labels, domain ids of both splits) are written once as ``.npy`` files
into one folder per dataset and loader configuration, ``<cache>/<loader>-<key>/`` (``<cache>``:
``$CLBENCH_CACHE``, else ``~/.cache/clbench``), with a ``meta.json`` holding the rest (class
names, normalisation statistics, the content checksum, each array's shape and dtype). Later runs
map the files instead of loading the data: batches are gathered from the kernel's page cache,
which is shared by every process reading the same dataset and given back under memory pressure,
instead of from a private copy in each process.

The key (16 hex digits of SHA-256) covers the cache format, the loader's registry name, its
parameters, and what the decoded arrays depend on beyond them:

- sources with a ``cache_fingerprint()`` method (the torchvision-format files, ImageNet-R,
  CUB-200, TinyImageNet) list their input files with byte size and modification time (the image
  sources: every image with its label), so a cached dataset opens without reading the source;
- any other source is loaded first and keyed by its content checksum (`content_checksum`), so the
  cache is exact for them too, but saves memory only after the load.

A source with ``load_into(sink)`` (the image-folder datasets) decodes block by block straight into
the cache's files; any other is loaded into memory and then written.

Safety: an entry is built in a temporary folder next to it and renamed into place only when every
file is written and flushed to disk, so a killed build never leaves an entry that looks complete.
Before use, every file's ``.npy`` header must match ``meta.json`` and its size must match the
header; an entry that fails is removed and rebuilt. The pixels themselves are not re-hashed on
open (that would read the whole dataset), so a bit flip inside a file goes unnoticed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clbench.data.arrays import row_chunks
from clbench.data.dataset import InMemoryDataset, Split
from clbench.data.source import DataSource
from clbench.errors import ClbenchError, ConfigError

CACHE_ENV = "CLBENCH_CACHE"
FORMAT = 1  # bump when the layout or the decoding changes, so older entries are not trusted
META = "meta.json"
SPLITS = ("train", "test")
FIELDS = ("x", "y", "domain")

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$CLBENCH_CACHE``, else ``~/.cache/clbench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "clbench").expanduser()


def cache_key(loader: str, params: dict[str, Any], inputs: Any) -> str:
    """16 hex digits of SHA-256 over the format, the loader, its parameters and ``inputs``."""
    payload = {"format": FORMAT, "loader": loader, "params": params, "inputs": inputs}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_memmapped(source: DataSource, loader: str, root: Path | None = None) -> InMemoryDataset:
    """The dataset of ``source`` (registered as ``loader``), mapped from its cache entry under
    ``root`` (default `cache_root`), which is built first when missing or damaged."""
    root = cache_root() if root is None else root
    params = source.config.model_dump(mode="json")
    fingerprint = getattr(source, "cache_fingerprint", None)
    inputs = fingerprint() if fingerprint is not None else None
    loaded: InMemoryDataset | None = None
    if inputs is None:  # no cheap fingerprint: the content itself is the key
        loaded = source.load()
        inputs = {"checksum": loaded.checksum}
    entry = root / f"{loader}-{cache_key(loader, params, inputs)}"
    dataset = open_entry(entry)
    if dataset is not None:
        return dataset
    load_into = getattr(source, "load_into", None)
    if loaded is not None or load_into is None:
        whole = loaded if loaded is not None else source.load()
        _build(entry, lambda sink: _copy_into(whole, sink))
    else:
        _build(entry, load_into)
    dataset = open_entry(entry)
    if dataset is None:  # just written and checked: only a vanishing disk gets here
        raise ConfigError("storage", "memmap", f"a cache folder that keeps its files ({entry})")
    return dataset


# --------------------------------------------------------------------------- reading


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a C-order ``.npy`` file whose size matches its header."""
    with path.open("rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        offset = f.tell()
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if fortran or path.stat().st_size != expected:
        raise ValueError(f"{path.name}: {path.stat().st_size} bytes, header says {expected}")
    return tuple(shape), dtype, offset


def _mapped(path: Path, shape: list[int], dtype: str) -> torch.Tensor:
    """The array of ``path`` as a tensor over a copy-on-write map of the file, after checking its
    header against what ``meta.json`` recorded.

    Copy-on-write (``mmap_mode="c"``) rather than read-only: its pages are the same page-cache
    pages, but a torch tensor over a read-only map would crash the process (SIGSEGV) on an
    in-place write, and torch warns about non-writable arrays; here a write stays private.
    """
    found_shape, found_dtype, _ = _header(path)
    if list(found_shape) != shape or found_dtype != np.dtype(dtype):
        raise ValueError(f"{path.name}: {found_shape} {found_dtype}, expected {shape} {dtype}")
    if 0 in found_shape:  # an empty file cannot be mapped
        return torch.from_numpy(np.empty(found_shape, dtype=found_dtype))
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def open_entry(entry: Path) -> InMemoryDataset | None:
    """The dataset of a complete, intact cache entry; None if there is none. A damaged entry
    (missing or short file, header not matching ``meta.json``) is removed."""
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')}, expected {FORMAT}")
        arrays = meta["arrays"]
        splits = []
        for split in SPLITS:
            parts = {
                field: _mapped(entry / f"{split}_{field}.npy", *arrays[f"{split}_{field}"])
                for field in FIELDS
                if f"{split}_{field}" in arrays
            }
            splits.append(Split(parts["x"], parts["y"], parts.get("domain")))
        domains = meta["domain_names"]
        return InMemoryDataset(
            name=meta["name"],
            train=splits[0],
            test=splits[1],
            class_names=tuple(meta["class_names"]),
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
            domain_names=None if domains is None else tuple(domains),
            checksum=meta["checksum"],
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("dataset cache %s is damaged (%s): rebuilding it", entry, exc)
        _discard(entry)
        return None


# --------------------------------------------------------------------------- writing


class _FileSink:
    """`ArraySink` writing each array to ``<folder>/<name>.npy`` block by block: the header, then
    the rows as they come, so the array is never whole in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.arrays: dict[str, tuple[list[int], str]] = {}

    def __call__(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, blocks: Iterable[np.ndarray]
    ) -> torch.Tensor:
        dtype = np.dtype(dtype)
        path = self.folder / f"{name}.npy"
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        rows = 0
        with path.open("wb") as f:
            np.lib.format.write_array_header_1_0(f, {**header, "shape": tuple(shape)})
            for block in blocks:
                block = np.ascontiguousarray(block, dtype=dtype)
                if block.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"{name}: a block of shape {block.shape}, rows of {shape}")
                f.write(block.data)
                rows += len(block)
            f.flush()
            os.fsync(f.fileno())  # on disk before the entry is renamed into place
        if rows != shape[0]:
            raise ValueError(f"{name}: {rows} rows written for an array of {shape[0]}")
        self.arrays[name] = ([int(n) for n in shape], dtype.str)
        return _mapped(path, *self.arrays[name])


def _copy_into(dataset: InMemoryDataset, sink: _FileSink) -> InMemoryDataset:
    """Write an in-memory dataset's arrays to ``sink``; the same dataset, mapped."""
    splits = []
    for name, split in zip(SPLITS, (dataset.train, dataset.test), strict=True):
        parts = {}
        for field in FIELDS:
            tensor = getattr(split, field)
            if tensor is not None:
                array = tensor.contiguous().numpy()
                parts[field] = sink(f"{name}_{field}", array.shape, array.dtype, row_chunks(array))
        splits.append(Split(parts["x"], parts["y"], parts.get("domain")))
    return InMemoryDataset(
        name=dataset.name,
        train=splits[0],
        test=splits[1],
        class_names=dataset.class_names,
        mean=dataset.mean,
        std=dataset.std,
        domain_names=dataset.domain_names,
        checksum=dataset.checksum,
    )


def _build(entry: Path, fill: Callable[[Any], InMemoryDataset]) -> None:
    """Build ``entry`` in a temporary folder with ``fill(sink)`` and rename it into place."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(entry)
        tmp = entry.parent / f".{entry.name}.tmp-{socket.gethostname()}-{os.getpid()}"
        tmp = tmp.with_name(f"{tmp.name}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
    except OSError as exc:
        raise ConfigError(
            "storage", "memmap", f"a writable cache folder ({exc}); set {CACHE_ENV} to one"
        ) from None
    try:
        sink = _FileSink(tmp)
        dataset = fill(sink)
        meta = {
            "format": FORMAT,
            "name": dataset.name,
            "class_names": list(dataset.class_names),
            "mean": list(dataset.mean),
            "std": list(dataset.std),
            "domain_names": None if dataset.domain_names is None else list(dataset.domain_names),
            "checksum": dataset.checksum,
            "arrays": sink.arrays,
        }
        del dataset  # its maps of the temporary files
        with (tmp / META).open("w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        try:
            os.rename(tmp, entry)  # atomic: the entry appears complete or not at all
        except OSError:
            if not entry.is_dir():
                raise
            # another process built the same entry meanwhile: keep theirs
        else:
            _fsync_dir(entry.parent)
    except ClbenchError:  # the source's own (a corrupt image is a DataNotFoundError, an OSError)
        raise
    except OSError as exc:
        raise ConfigError(
            "storage", "memmap", f"a cache folder with room for the data ({exc}); set {CACHE_ENV}"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(entry: Path) -> None:
    """Remove a damaged entry: renamed aside first, so no reader sees it half deleted."""
    aside = entry.with_name(f".{entry.name}.discarded-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(entry, aside)
    except OSError:
        return  # gone already (another process discarded it)
    shutil.rmtree(aside, ignore_errors=True)


def _remove_abandoned(entry: Path) -> None:
    """Delete temporary folders of ``entry`` left by killed builds on this host (their process
    is gone); a live build's folder is left alone."""
    prefix = f".{entry.name}.tmp-{socket.gethostname()}-"
    for tmp in entry.parent.glob(f"{glob.escape(prefix)}*"):
        pid = tmp.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
