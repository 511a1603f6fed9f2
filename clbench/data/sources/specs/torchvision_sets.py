"""`mnist`, `fashion_mnist`, `cifar10`, `cifar100`, `svhn`: torchvision's datasets, read from files.

The files are parsed here instead of through torchvision's dataset classes, which insist on their
own folder layout and checksums: this way torchvision's downloads, hand-extracted archives and the
gzipped files of Debian's ``dataset-fashion-mnist`` package all load. torchvision is only used to
download (``data.download=true``).

Reading the files needs numpy only, so these sources are their own specs: finding the files
(`check_available`) and reading them (`arrays`) never import torch, and a dry run describes a run
on them without it; `load` turns the arrays into tensors.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zlib
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from clbench.data.arrays import ArrayDataset, ArraySplit
from clbench.data.source import DOWNLOAD_FIX, CorruptDataError, DataSource
from clbench.errors import DataNotFoundError
from clbench.registry import DATASETS

if TYPE_CHECKING:
    from clbench.data.dataset import InMemoryDataset

Arrays = tuple[np.ndarray, np.ndarray]  # images uint8 [N, C, H, W], labels int64 [N]


class _FileSource(DataSource):
    """A dataset made of fixed file names, found in the first candidate folder that has them all."""

    needs_files: ClassVar[bool] = True
    name: ClassVar[str]
    files: ClassVar[tuple[str, ...]]
    gzip_ok: ClassVar[bool] = False  # also accept ``<file>.gz``
    hint: ClassVar[str] = ""  # extra fix appended to the missing-files message
    class_names: ClassVar[tuple[str, ...]] = ()
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]

    @abstractmethod
    def _dirs(self) -> list[Path]:
        """Candidate folders, in search order."""

    @abstractmethod
    def _fetch(self) -> None:
        """Download the files into the data root (torchvision's layout)."""

    @abstractmethod
    def _read(self, files: dict[str, Path]) -> tuple[Arrays, Arrays, tuple[str, ...]]:
        """Parse the located files into train arrays, test arrays and class names."""

    def _find(self) -> dict[str, Path] | None:
        for folder in self._dirs():
            found: dict[str, Path] = {}
            for file in self.files:
                names = (file, f"{file}.gz") if self.gzip_ok else (file,)
                path = next((folder / n for n in names if (folder / n).is_file()), None)
                if path is None:
                    break
                found[file] = path
            else:
                return found
        return None

    def _expected(self) -> str:
        suffix = "[.gz]" if self.gzip_ok else ""
        files = ", ".join(f + suffix for f in self.files)
        dirs = ", ".join(str(d) for d in self._dirs())
        return f"{files} in one of: {dirs}"

    def _missing(self) -> DataNotFoundError:
        return DataNotFoundError(
            f"{self.name}: data files not found; expected {self._expected()}. "
            f"Fix: {DOWNLOAD_FIX}{self.hint}."
        )

    def check_available(self) -> None:
        if not self.download and self._find() is None:
            raise self._missing()

    def _locate(self) -> dict[str, Path]:
        found = self._find()
        if found is None and self.download:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self._fetch()
            except (OSError, RuntimeError) as exc:  # no network, mirror down, bad checksum
                raise DataNotFoundError(
                    f"{self.name}: download into {self.root} failed ({exc}). Put the files there "
                    f"instead: {self._expected()}{self.hint}."
                ) from exc
            found = self._find()
        if found is None:
            raise self._missing()
        return found

    def cache_fingerprint(self) -> list[tuple[str, int, int]] | None:
        """The files the arrays are read from, with byte size and modification time: what the
        memory-mapped cache's key depends on besides the config (`clbench.data.cache`); None
        while they are missing (to be downloaded)."""
        found = self._find()
        if found is None:
            return None
        return [
            (str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in found.values()
        ]

    def arrays(self) -> ArrayDataset:
        """The files' arrays (downloaded first with ``download`` and no files)."""
        (x_train, y_train), (x_test, y_test), class_names = self._read(self._locate())
        return ArrayDataset(
            self.name, ArraySplit(x_train, y_train), ArraySplit(x_test, y_test), class_names
        )

    def load(self) -> InMemoryDataset:
        from clbench.data.dataset import InMemoryDataset  # torch: only once the data loads

        return InMemoryDataset.from_arrays(self.arrays(), self.mean, self.std)


def _check_labels(path: Path, labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise CorruptDataError(
            path, f"labels range {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}"
        )
    return labels.astype(np.int64)


# --------------------------------------------------------------------------- idx: (Fashion-)MNIST


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte idx file (gzipped if the name ends in ``.gz``) of rank ``ndim``.

    Checks the magic number (``0x00000800 + ndim``) and that the data size matches the dimensions
    in the header, so a truncated download fails here with the file's name, not later as a shape
    error.
    """
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(path, f"cannot be decompressed ({exc})") from exc
    else:
        raw = path.read_bytes()
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != 0x800 + ndim:
        found = "none" if magic is None else f"0x{magic:08x}"
        raise CorruptDataError(
            path, f"not a rank-{ndim} idx file (magic {found}, expected 0x{0x800 + ndim:08x})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(path, "truncated idx header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)
    if len(raw) - header != expected:
        shape = "x".join(map(str, dims))
        raise CorruptDataError(
            path,
            f"holds {len(raw) - header} data bytes but its header announces {shape} = {expected} "
            "(truncated or corrupt)",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


class _IdxSource(_FileSource):
    """MNIST-format datasets: four idx files, plain or gzipped."""

    files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
    gzip_ok = True
    folder: ClassVar[str]  # torchvision's folder (and dataset class) name
    aliases: ClassVar[tuple[str, ...]] = ()  # further folder names under the root

    def _dirs(self) -> list[Path]:
        root = self.root
        return [
            root,
            root / self.folder / "raw",
            root / self.name,
            root / self.name / "raw",
            *(root / alias for alias in self.aliases),
        ]

    def _fetch(self) -> None:
        import torchvision.datasets

        getattr(torchvision.datasets, self.folder)(str(self.root), train=True, download=True)

    def _read(self, files: dict[str, Path]) -> tuple[Arrays, Arrays, tuple[str, ...]]:
        def split(prefix: str) -> Arrays:
            images_path = files[f"{prefix}-images-idx3-ubyte"]
            labels_path = files[f"{prefix}-labels-idx1-ubyte"]
            images = read_idx(images_path, 3)
            labels = _check_labels(labels_path, read_idx(labels_path, 1), len(self.class_names))
            if len(labels) != len(images):
                raise CorruptDataError(
                    labels_path, f"has {len(labels)} labels for {len(images)} images"
                )
            return images[:, None], labels

        return split("train"), split("t10k"), self.class_names


@DATASETS.register("mnist")
class MNIST(_IdxSource):
    """MNIST handwritten digits, 60000 + 10000 grey 28x28 images."""

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "MNIST handwritten digits (idx files, plain or gzipped)."

    name = "mnist"
    folder = "MNIST"
    class_names = tuple(str(k) for k in range(10))
    mean, std = (0.1307,), (0.3081,)


@DATASETS.register("fashion_mnist")
class FashionMNIST(_IdxSource):
    """Fashion-MNIST (Zalando), 60000 + 10000 grey 28x28 images of clothing."""

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "Fashion-MNIST clothing images (idx files, plain or gzipped)."

    name = "fashion_mnist"
    folder = "FashionMNIST"
    aliases = ("fashion-mnist",)
    hint = (
        "; for Fashion-MNIST on Debian: apt-get install dataset-fashion-mnist and "
        "data.root=/usr/share/datasets/fashion-mnist"
    )
    class_names = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    mean, std = (0.2860,), (0.3530,)


# --------------------------------------------------------------------------- CIFAR pickle batches


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a dataset file is untrusted input, and a
    general pickle can run arbitrary code when loaded."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR python batch; its keys are bytes (Python 2 pickles), returned as str."""
    try:
        with path.open("rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # any failure to unpickle means the file is damaged
        raise CorruptDataError(path, f"is not a readable CIFAR pickle ({exc!r})") from exc
    if not isinstance(obj, dict):
        raise CorruptDataError(path, f"holds a {type(obj).__name__}, expected a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _entry(path: Path, batch: dict[str, Any], key: str) -> Any:
    if key not in batch:
        raise CorruptDataError(path, f"has no {key!r} entry (found: {', '.join(sorted(batch))})")
    return batch[key]


def _names(path: Path, key: str) -> tuple[str, ...]:
    names = _entry(path, _unpickle(path), key)
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> Arrays:
    batch = _unpickle(path)
    data = np.asarray(_entry(path, batch, "data"), dtype=np.uint8)
    labels = np.asarray(_entry(path, batch, label_key))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise CorruptDataError(
            path, f"data of shape {data.shape} with {len(labels)} labels, expected [N, 3072], N"
        )
    return data.reshape(-1, 3, 32, 32), _check_labels(path, labels, num_classes)


def _concat(parts: list[Arrays]) -> Arrays:
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


@DATASETS.register("cifar10")
class CIFAR10(_FileSource):
    """CIFAR-10, 50000 + 10000 RGB 32x32 images, from the python version's pickle batches."""

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "CIFAR-10 (python pickle batches, cifar-10-batches-py)."

    name = "cifar10"
    files = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

    def _dirs(self) -> list[Path]:
        folder = "cifar-10-batches-py"
        return [self.root / folder, self.root, self.root / "cifar10" / folder]

    def _fetch(self) -> None:
        import torchvision.datasets

        torchvision.datasets.CIFAR10(str(self.root), train=True, download=True)

    def _read(self, files: dict[str, Path]) -> tuple[Arrays, Arrays, tuple[str, ...]]:
        names = _names(files["batches.meta"], "label_names")
        train = _concat(
            [_cifar_batch(files[f"data_batch_{i}"], "labels", len(names)) for i in range(1, 6)]
        )
        return train, _cifar_batch(files["test_batch"], "labels", len(names)), names


@DATASETS.register("cifar100")
class CIFAR100(_FileSource):
    """CIFAR-100, 50000 + 10000 RGB 32x32 images with 100 fine or 20 coarse (superclass) labels."""

    class Config(DataSource.Config):
        label_type: Literal["fine", "coarse"] = Field(
            "fine",
            description="'fine' (100 classes) or 'coarse' (20 superclasses).",
        )

    summary: ClassVar[str] = "CIFAR-100, fine or coarse labels (python pickles, cifar-100-python)."

    name = "cifar100"
    files = ("train", "test", "meta")
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    config: Config

    def _dirs(self) -> list[Path]:
        folder = "cifar-100-python"
        return [self.root / folder, self.root, self.root / "cifar100" / folder]

    def _fetch(self) -> None:
        import torchvision.datasets

        torchvision.datasets.CIFAR100(str(self.root), train=True, download=True)

    def _read(self, files: dict[str, Path]) -> tuple[Arrays, Arrays, tuple[str, ...]]:
        kind = self.config.label_type
        names = _names(files["meta"], f"{kind}_label_names")
        label_key = f"{kind}_labels"
        train = _cifar_batch(files["train"], label_key, len(names))
        return train, _cifar_batch(files["test"], label_key, len(names)), names


# --------------------------------------------------------------------------- SVHN .mat files


def _read_svhn(path: Path) -> Arrays:
    from scipy.io import loadmat  # lazy: scipy.io is only needed here

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises many types on damaged files
        raise CorruptDataError(path, f"is not a readable .mat file ({exc!r})") from exc
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise CorruptDataError(path, "expected X of shape [32, 32, 3, N] and N labels y")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1), dtype=np.uint8)  # -> [N, C, H, W]
    labels = y.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10
    return images, _check_labels(path, labels, 10)


@DATASETS.register("svhn")
class SVHN(_FileSource):
    """SVHN cropped digits (format 2), 73257 + 26032 RGB 32x32 house-number digits."""

    class Config(DataSource.Config):
        pass

    summary: ClassVar[str] = "SVHN cropped digits (train_32x32.mat, test_32x32.mat)."

    name = "svhn"
    files = ("train_32x32.mat", "test_32x32.mat")
    class_names = tuple(str(k) for k in range(10))
    mean, std = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)

    def _dirs(self) -> list[Path]:
        return [self.root, self.root / "svhn", self.root / "SVHN"]

    def _fetch(self) -> None:
        import torchvision.datasets

        for split in ("train", "test"):
            torchvision.datasets.SVHN(str(self.root), split=split, download=True)

    def _read(self, files: dict[str, Path]) -> tuple[Arrays, Arrays, tuple[str, ...]]:
        train = _read_svhn(files["train_32x32.mat"])
        return train, _read_svhn(files["test_32x32.mat"]), self.class_names
