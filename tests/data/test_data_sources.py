"""Data sources: every reader against tiny files written in the real on-disk formats."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from clbench.data.dataset import InMemoryDataset
from clbench.data.source import DataSource
from clbench.errors import ConfigError, DataNotFoundError
from clbench.registry import DATASETS, validate_params
from tests.helpers import write_idx

FASHION_CLASSES = (
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
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def source(
    name: str, root: Path | None = None, download: bool = False, **params: Any
) -> DataSource:
    """Build a registered source the way the harness does: validated params, root, download."""
    cls = DATASETS.get(name)
    return cls(validate_params(cls.Config, params, "data"), root or Path("data"), download)


def load(name: str, root: Path | None = None, **params: Any) -> InMemoryDataset:
    return source(name, root, **params).load()


# --------------------------------------------------------------------------- real-format writers
# (write_idx, shared with the Avalanche tests, is in tests/helpers.py)


def write_mnist(folder: Path, gz: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 3, 9, 9], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([5, 6, 7, 8], dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return arrays


def write_pickle(path: Path, obj: dict[bytes, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def write_cifar10(root: Path) -> dict[str, np.ndarray]:
    """Five 2-sample train batches and a 3-sample test batch, as in cifar-10-python.tar.gz."""
    folder = root / "cifar-10-batches-py"
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (13, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, 13)
    for i in range(5):
        rows = slice(2 * i, 2 * i + 2)
        batch = {b"data": data[rows], b"labels": labels[rows].tolist(), b"batch_label": b"x"}
        write_pickle(folder / f"data_batch_{i + 1}", batch)
    write_pickle(folder / "test_batch", {b"data": data[10:], b"labels": labels[10:].tolist()})
    write_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES]})
    return {"data": data, "labels": labels}


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    write_cifar10(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- registry


def test_every_source_is_registered_and_documented() -> None:
    expected = {"synthetic", "digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn"}
    assert expected | {"imagefolder", "concat"} <= set(DATASETS.names())
    for name, cls in DATASETS:
        assert cls.summary, name
        assert cls.Config.model_config.get("extra") == "forbid", name
        assert all(info.description for info in cls.Config.model_fields.values()), name
    with pytest.raises(ConfigError, match=r"data\.bogus"):
        source("digits", bogus=1)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_and_seed_determinism() -> None:
    d = load("synthetic", num_classes=4, dim=8, train_per_class=5, test_per_class=3)
    assert d.train.x.shape == (20, 8) and d.train.x.dtype == torch.float32
    assert d.test.x.shape == (12, 8) and d.train.y.dtype == torch.int64
    assert torch.equal(torch.bincount(d.train.y), torch.full((4,), 5))
    assert (d.mean, d.std, d.num_classes, d.is_image) == ((0.0,), (1.0,), 4, False)
    again = load("synthetic", num_classes=4, dim=8, train_per_class=5, test_per_class=3)
    other = load("synthetic", num_classes=4, dim=8, train_per_class=5, test_per_class=3, seed=1)
    assert again.checksum == d.checksum and other.checksum != d.checksum


def test_synthetic_vectors_are_standardised() -> None:
    x = load("synthetic", num_classes=20, dim=64).train.x
    assert abs(float(x.mean())) < 0.2 and abs(float(x.std()) - 1.0) < 0.2


def test_synthetic_task_similarity_pulls_consecutive_tasks_together() -> None:
    def consecutive_distance(similarity: float) -> float:
        d = load("synthetic", task_similarity=similarity, noise=0.5, train_per_class=100)
        means = torch.stack([d.train.x[d.train.y == k].mean(0) for k in range(10)])
        return float((means[2:] - means[:-2]).norm(dim=1).mean())  # class k vs class k - 2

    distances = [consecutive_distance(s) for s in (0.0, 0.5, 0.9, 1.0)]
    assert distances == sorted(distances, reverse=True) and len(set(distances)) == 4
    assert distances[-1] < 0.1 * distances[0]  # similarity 1: shared geometry up to sampling noise


def test_synthetic_images() -> None:
    d = load("synthetic", image_size=5, num_classes=3, train_per_class=4, test_per_class=2)
    assert d.train.x.shape == (12, 1, 5, 5) and d.train.x.dtype == torch.uint8
    assert 0.0 < d.mean[0] < 1.0 and 0.0 < d.std[0] < 1.0
    with pytest.raises(ConfigError, match=r"dim must be image_size\*\*2 = 25"):
        source("synthetic", image_size=5, dim=32)
    with pytest.raises(ConfigError, match=r"data\.task_similarity"):
        source("synthetic", task_similarity=1.5)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_ranges_and_stratified_split() -> None:
    d = load("digits")
    assert len(d.train) + len(d.test) == 1797
    assert d.input_shape == (1, 8, 8) and d.train.x.dtype == torch.uint8
    assert int(d.train.x.min()) == 0 and int(d.train.x.max()) == 255
    assert d.class_names == tuple(str(k) for k in range(10))
    per_class = torch.bincount(d.train.y) + torch.bincount(d.test.y)
    expected_test = torch.round(per_class * 0.2)
    assert torch.equal(torch.bincount(d.test.y).double(), expected_test.double())
    scaled = d.train.x.double() / 255
    assert d.mean[0] == pytest.approx(float(scaled.mean()))
    assert d.std[0] == pytest.approx(float(scaled.std(unbiased=False)))
    assert load("digits").checksum == d.checksum
    assert load("digits", split_seed=1).checksum != d.checksum
    assert len(load("digits", test_fraction=0.5).test) > len(d.test)


def test_bundled_digits_are_scikit_learns_load_digits(monkeypatch) -> None:
    """The fast CSV read equals load_digits, and load_digits is the fallback without the file."""
    from sklearn.datasets import load_digits

    from clbench.data.sources.specs import digits

    data, target = digits.bundled_digits()
    bunch = load_digits()
    assert np.array_equal(data, bunch.data) and np.array_equal(target, bunch.target)
    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    data, target = digits.bundled_digits()
    assert np.array_equal(data, bunch.data) and np.array_equal(target, bunch.target)


# --------------------------------------------------------------------------- idx: (Fashion-)MNIST


@pytest.mark.parametrize(
    ("name", "subdir", "gz"),
    [
        ("mnist", "MNIST/raw", False),  # torchvision layout, extracted
        ("mnist", "MNIST/raw", True),
        ("mnist", ".", True),  # flat
        ("mnist", "mnist", False),
        ("mnist", "mnist/raw", True),
        ("fashion_mnist", ".", True),  # Debian layout: root=/usr/share/datasets/fashion-mnist
        ("fashion_mnist", "FashionMNIST/raw", False),
        ("fashion_mnist", "fashion-mnist", True),
    ],
)
def test_idx_layouts_round_trip(tmp_path: Path, name: str, subdir: str, gz: bool) -> None:
    arrays = write_mnist(tmp_path / subdir, gz)
    src = source(name, tmp_path)
    src.check_available()
    d = src.load()
    assert d.train.x.shape == (6, 1, 28, 28) and d.train.x.dtype == torch.uint8
    assert torch.equal(d.train.x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(d.test.x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert d.train.y.tolist() == [0, 1, 2, 3, 9, 9] and d.test.y.tolist() == [5, 6, 7, 8]
    if name == "mnist":
        assert d.class_names == tuple("0123456789") and d.mean == (0.1307,)
    else:
        assert d.class_names == FASHION_CLASSES and d.std == (0.3530,)


def test_idx_checksum_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    first = load("mnist", tmp_path).checksum
    assert load("mnist", tmp_path).checksum == first
    arrays["t10k-images-idx3-ubyte"][2, 5, 7] ^= 1
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", arrays["t10k-images-idx3-ubyte"])
    assert load("mnist", tmp_path).checksum != first


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file_names_the_file(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, gz)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataNotFoundError, match=r"truncated|decompressed") as info:
        load("mnist", tmp_path)
    assert str(path) in str(info.value)


def test_idx_wrong_magic_and_bad_labels_are_reported(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    write_idx(labels, arrays["train-images-idx3-ubyte"])  # an image file where labels belong
    with pytest.raises(DataNotFoundError, match="magic 0x00000803, expected 0x00000801"):
        load("mnist", tmp_path)
    write_idx(labels, np.array([0, 1, 2, 3, 4, 10]))
    with pytest.raises(DataNotFoundError, match=r"labels range 0\.\.10"):
        load("mnist", tmp_path)
    write_idx(labels, np.array([0, 1, 2]))
    with pytest.raises(DataNotFoundError, match="3 labels for 6 images"):
        load("mnist", tmp_path)


def test_missing_files_name_the_paths_and_the_fix(tmp_path: Path) -> None:
    src = source("mnist", tmp_path)
    with pytest.raises(DataNotFoundError) as info:
        src.check_available()
    message = str(info.value)
    assert "train-images-idx3-ubyte[.gz]" in message and str(tmp_path / "MNIST" / "raw") in message
    assert "data.download=true" in message and "CLBENCH_DATA" in message
    with pytest.raises(DataNotFoundError):
        src.load()
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        source("fashion_mnist", tmp_path).check_available()
    for name, path in [
        ("cifar10", tmp_path / "cifar-10-batches-py"),
        ("cifar100", tmp_path / "cifar-100-python"),
        ("svhn", tmp_path / "svhn"),
    ]:
        with pytest.raises(DataNotFoundError, match="download") as info:
            source(name, tmp_path).check_available()
        assert str(path) in str(info.value)


def test_download_uses_torchvision_into_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    calls = []

    class FakeMNIST:  # stands in for the network: writes what torchvision's download leaves
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, download))
            write_mnist(Path(root) / "MNIST" / "raw", gz=True)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    src = source("mnist", tmp_path / "new", download=True)
    src.check_available()  # download on: nothing to check yet
    assert len(src.load().train) == 6 and calls == [(str(tmp_path / "new"), True)]
    src.load()
    assert len(calls) == 1  # files present: no second download

    class Offline:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    offline = source("fashion_mnist", tmp_path / "off", download=True)
    with pytest.raises(DataNotFoundError, match="network unreachable") as info:
        offline.load()
    assert str(tmp_path / "off") in str(info.value)


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="Debian dataset-fashion-mnist not installed"
)
def test_debian_fashion_mnist_package() -> None:
    d = load("fashion_mnist", DEBIAN_FASHION)
    assert (len(d.train), len(d.test), d.input_shape) == (60000, 10000, (1, 28, 28))
    assert d.class_names == FASHION_CLASSES
    assert torch.equal(torch.bincount(d.test.y), torch.full((10,), 1000))


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_pickle_batches(tmp_path: Path) -> None:
    raw = write_cifar10(tmp_path)
    d = load("cifar10", tmp_path)
    assert d.train.x.shape == (10, 3, 32, 32) and d.test.x.shape == (3, 3, 32, 32)
    assert d.class_names == CIFAR10_NAMES and d.mean == (0.4914, 0.4822, 0.4465)
    row = raw["data"][3]  # data_batch_2, first sample: 1024 R, then G, then B, each row-major
    assert int(d.train.x[3, 0, 0, 1]) == row[1]
    assert int(d.train.x[3, 1, 0, 0]) == row[1024]
    assert int(d.train.x[3, 2, 31, 31]) == row[3071]
    assert torch.equal(d.train.x.reshape(10, -1), torch.from_numpy(raw["data"][:10]))
    assert d.train.y.tolist() == raw["labels"][:10].tolist()
    assert d.test.y.tolist() == raw["labels"][10:].tolist()
    # pointing the root at the extracted folder itself works too
    assert load("cifar10", tmp_path / "cifar-10-batches-py").checksum == d.checksum


def test_cifar_truncated_batch_names_the_file(cifar10_root: Path) -> None:
    path = cifar10_root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataNotFoundError, match="not a readable CIFAR pickle") as info:
        load("cifar10", cifar10_root)
    assert str(path) in str(info.value)


class _RunsCode:
    """Unpickling this calls a function: what a malicious data file would do."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_cifar_pickle_that_would_run_code_is_refused(cifar10_root: Path, capsys) -> None:
    path = cifar10_root / "cifar-10-batches-py" / "data_batch_2"
    write_pickle(path, {b"data": _RunsCode(), b"labels": [0]})
    with pytest.raises(DataNotFoundError, match=r"refusing to load __builtin__\.print") as info:
        load("cifar10", cifar10_root)
    assert str(path) in str(info.value) and "pwned" not in capsys.readouterr().out


def test_cifar100_fine_and_coarse_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, (7, 3072), dtype=np.uint8)
    fine, coarse = [0, 99, 5, 17, 42, 3, 64], [0, 19, 1, 2, 3, 4, 5]
    for split, rows in (("train", slice(0, 5)), ("test", slice(5, 7))):
        write_pickle(
            folder / split,
            {b"data": data[rows], b"fine_labels": fine[rows], b"coarse_labels": coarse[rows]},
        )
    meta = {
        b"fine_label_names": [f"fine{k}".encode() for k in range(100)],
        b"coarse_label_names": [f"coarse{k}".encode() for k in range(20)],
    }
    write_pickle(folder / "meta", meta)
    d = load("cifar100", tmp_path)
    assert d.num_classes == 100 and d.class_names[99] == "fine99"
    assert d.train.y.tolist() == fine[:5] and d.test.y.tolist() == fine[5:]
    assert torch.equal(d.test.x.reshape(2, -1), torch.from_numpy(data[5:]))
    c = load("cifar100", tmp_path, label_type="coarse")
    assert c.num_classes == 20 and c.train.y.tolist() == coarse[:5]
    with pytest.raises(ConfigError, match=r"data\.label_type"):
        source("cifar100", tmp_path, label_type="medium")


# --------------------------------------------------------------------------- SVHN


def test_svhn_mat_files(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(3)
    mats = {}
    for split, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [10], [9]][:n], dtype=np.uint8)
        (tmp_path / "svhn").mkdir(exist_ok=True)
        savemat(tmp_path / "svhn" / f"{split}_32x32.mat", {"X": x, "y": y})
        mats[split] = x
    d = load("svhn", tmp_path)
    assert d.train.x.shape == (5, 3, 32, 32) and d.train.x.dtype == torch.uint8
    assert d.train.y.tolist() == [0, 1, 2, 0, 9] and d.test.y.tolist() == [0, 1, 2]
    assert torch.equal(d.train.x, torch.from_numpy(mats["train"]).permute(3, 2, 0, 1))
    assert int(d.test.x[2, 1, 4, 7]) == mats["test"][4, 7, 1, 2]  # X is [H, W, C, N]


# --------------------------------------------------------------------------- imagefolder


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def image_tree(tmp_path: Path) -> dict[str, np.ndarray]:
    """tmp_path/imgs/{cat,dog}/*.png, 5 per class: cats RGB 6x8, dogs 9x12 (one greyscale)."""
    rng = np.random.default_rng(4)
    images = {}
    for cls, shape in (("dog", (9, 12, 3)), ("cat", (6, 8, 3))):
        for i in range(5):
            image = rng.integers(0, 256, shape, dtype=np.uint8)
            if cls == "dog" and i == 0:
                image = image[:, :, 0]  # a greyscale file: converted to RGB
            images[f"{cls}/{i}.png"] = image
            write_png(tmp_path / "imgs" / cls / f"{i}.png", image)
    (tmp_path / "imgs" / "empty").mkdir()  # a folder without images is not a class
    return images


def test_imagefolder_decodes_sorted_classes_and_splits(
    tmp_path: Path, image_tree: dict[str, np.ndarray]
) -> None:
    d = load("imagefolder", tmp_path, path="imgs", test_fraction=0.4)  # relative to the root
    assert d.class_names == ("cat", "dog")
    assert d.input_shape == (3, 6, 8) and d.train.x.dtype == torch.uint8  # first image's size
    assert torch.bincount(d.train.y).tolist() == [3, 3]
    assert torch.bincount(d.test.y).tolist() == [2, 2]
    x, y = torch.cat([d.train.x, d.test.x]), torch.cat([d.train.y, d.test.y])
    for i in range(5):  # cats already have the target size: PNG round-trips exactly
        cat = torch.from_numpy(image_tree[f"cat/{i}.png"]).permute(2, 0, 1)
        assert y[(x == cat).all(dim=(1, 2, 3))].tolist() == [0]
    again = load("imagefolder", tmp_path, path=str(tmp_path / "imgs"), test_fraction=0.4)
    assert again.checksum == d.checksum


def test_imagefolder_channels_size_and_train_test_folders(
    tmp_path: Path, image_tree: dict[str, np.ndarray]
) -> None:
    grey = load("imagefolder", tmp_path, path="imgs", channels=1, image_size=4)
    assert grey.input_shape == (1, 4, 4) and len(grey.mean) == 1
    rng = np.random.default_rng(5)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b", "c"):
            for i in range(n):
                write_png(
                    tmp_path / "split" / split / cls / f"{i}.png",
                    rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
                )
    d = load("imagefolder", tmp_path, path="split")
    assert d.class_names == ("a", "b", "c") and (len(d.train), len(d.test)) == (9, 6)


def test_imagefolder_errors(tmp_path: Path, image_tree: dict[str, np.ndarray]) -> None:
    with pytest.raises(DataNotFoundError, match="is not a folder") as info:
        source("imagefolder", tmp_path, path="nowhere").check_available()
    assert str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(DataNotFoundError, match="no class subfolders with images"):
        load("imagefolder", tmp_path, path="imgs/empty")
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataNotFoundError, match=r"broken\.png: is not a readable image"):
        load("imagefolder", tmp_path, path="imgs")
    with pytest.raises(ConfigError, match=r"data\.path"):
        source("imagefolder", tmp_path)
    with pytest.raises(ConfigError, match=r"data\.channels"):
        source("imagefolder", tmp_path, path="imgs", channels=2)


# --------------------------------------------------------------------------- concat


def test_concat_brings_sources_to_one_shape_with_domains(cifar10_root: Path) -> None:
    parts = [{"name": "synthetic", "image_size": 8, "train_per_class": 2, "test_per_class": 1}]
    parts.append({"name": "cifar10"})
    d = load("concat", cifar10_root, sources=parts)
    synthetic = load("synthetic", image_size=8, train_per_class=2, test_per_class=1)
    assert d.input_shape == (3, 32, 32) and d.train.x.dtype == torch.uint8
    assert (len(d.train), len(d.test)) == (20 + 10, 10 + 3)
    assert d.domain_names == ("synthetic", "cifar10")
    assert d.train.domain is not None and d.test.domain is not None
    assert d.train.domain.tolist() == [0] * 20 + [1] * 10
    assert d.test.domain.tolist() == [0] * 10 + [1] * 3
    assert torch.equal(d.train.y[:20], synthetic.train.y)
    grey = d.train.x[:20]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 0], grey[:, 2])
    assert d.class_names[0] == "0/airplane" and d.num_classes == 10
    assert torch.equal(d.train.x[20:], load("cifar10", cifar10_root).train.x)
    assert len(d.mean) == 3 and all(0 < s < 1 for s in d.std)


def test_concat_resizes_grey_images_within_their_range() -> None:
    parts = [{"name": "digits"}, {"name": "synthetic", "image_size": 16, "num_classes": 10}]
    d = load("concat", sources=parts)
    assert d.input_shape == (1, 16, 16) and d.domain_names == ("digits", "synthetic")
    digits = load("digits").train.x.flatten(1)
    resized = d.train.x[: len(digits)].flatten(1)
    # bilinear upsampling mixes neighbouring pixels: it never leaves an image's own range
    assert (resized.amax(1) <= digits.amax(1)).all() and (resized.amin(1) >= digits.amin(1)).all()
    assert (resized.float().mean(1) - digits.float().mean(1)).abs().max() < 16
    twice = load("concat", sources=[{"name": "digits"}, {"name": "digits", "split_seed": 1}])
    assert twice.domain_names == ("digits#0", "digits#1")


def test_concat_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.sources") as info:
        load("concat", sources=[{"name": "digits"}, {"name": "synthetic", "num_classes": 4}])
    assert "4 classes" in str(info.value)
    with pytest.raises(ConfigError, match=r"data\.sources.*vector sources of one dimension"):
        load("concat", sources=[{"name": "digits"}, {"name": "synthetic", "num_classes": 10}])
    with pytest.raises(ConfigError, match=r"data\.sources\.1\.name"):
        source("concat", sources=[{"name": "digits"}, {"name": "nope"}])
    with pytest.raises(ConfigError, match=r"data\.sources\.0\.bogus"):
        source("concat", sources=[{"name": "digits", "bogus": 1}])
    with pytest.raises(ConfigError, match=r"data\.sources"):
        source("concat", sources=[])
    with pytest.raises(DataNotFoundError, match="mnist"):
        source(
            "concat", tmp_path, sources=[{"name": "digits"}, {"name": "mnist"}]
        ).check_available()
