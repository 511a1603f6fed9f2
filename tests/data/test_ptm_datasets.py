"""`tinyimagenet`, `cub200`, `imagenet_r`: read from tiny fakes written in the real layouts.

Every image is one solid colour that encodes which file it is, so labels and splits can be checked
after JPEG compression and resizing (a uniform image stays uniform, up to a unit or two).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from clbench.cli import main
from clbench.data.dataset import InMemoryDataset
from clbench.data.source import DataSource
from clbench.data.sources._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    channel_stats,
)
from clbench.data.splits import stratified_split
from clbench.errors import ConfigError, DataNotFoundError
from clbench.registry import DATASETS, validate_params

Colour = tuple[int, int, int]


def source(name: str, root: Path, **params: Any) -> DataSource:
    """Build a registered source as the harness does: validated params, root, no download."""
    cls = DATASETS.get(name)
    return cls(validate_params(cls.Config, params, "data"), root, False)


def load(name: str, root: Path, **params: Any) -> InMemoryDataset:
    return source(name, root, **params).load()


def write_image(path: Path, colour: Colour, size: tuple[int, int], grey: bool = False) -> None:
    """A solid-colour image of ``size`` = (width, height); the format follows the suffix."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    if grey:
        image = image.convert("L")
    image.save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None)


def colours(x: torch.Tensor) -> list[Colour]:
    """The mean colour of each image of a uint8 ``[N, 3, H, W]`` batch, rounded."""
    return [tuple(round(v) for v in c) for c in x.double().mean(dim=(2, 3)).tolist()]


def assert_colours(x: torch.Tensor, expected: list[Colour], tolerance: int = 3) -> None:
    got = np.array(colours(x))
    assert got.shape == (len(expected), 3)
    assert np.abs(got - np.array(expected)).max() <= tolerance, (colours(x), expected)


def check_images(d: InMemoryDataset, size: int) -> None:
    for split in (d.train, d.test):
        assert split.x.dtype == torch.uint8 and split.x.shape[1:] == (3, size, size)
        assert split.y.dtype == torch.int64
        # every image is uniform: nothing but the colour survives the resize
        flat = split.x.flatten(2).int()
        assert int((flat.max(dim=2).values - flat.min(dim=2).values).max()) <= 6


# --------------------------------------------------------------------------- Tiny ImageNet

TINY_WNIDS = ("n03444034", "n01443537", "n02099601")  # line order of wnids.txt, not sorted


def tiny_train_colour(label: int, k: int) -> Colour:
    return (40 + 60 * label, 40 + 50 * k, 60)


def tiny_val_colour(j: int) -> Colour:
    return (30 + 20 * j, 200, 100)


def write_tinyimagenet(
    root: Path, wnids: tuple[str, ...] = TINY_WNIDS, per_class: int = 3, side: int = 64
) -> list[int]:
    """tiny-imagenet-200 as the official zip unpacks: wnids.txt, words.txt, train/<wnid>/images/,
    train/<wnid>/<wnid>_boxes.txt, val/images/, val/val_annotations.txt, test/images/. Returns the
    labels of the val images in annotation order."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in sorted(wnids)))
    for label, wnid in enumerate(wnids):
        boxes = []
        for k in range(per_class):
            name = f"{wnid}_{k}.JPEG"
            write_image(
                folder / "train" / wnid / "images" / name, tiny_train_colour(label, k), (side, side)
            )
            boxes.append(f"{name}\t0\t0\t{side - 1}\t{side - 1}\n")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    val_labels = [(len(wnids) - 1 - j) % len(wnids) for j in range(2 * len(wnids))]  # unsorted
    lines = []
    for j, label in enumerate(val_labels):
        write_image(folder / "val" / "images" / f"val_{j}.JPEG", tiny_val_colour(j), (side, side))
        lines.append(f"val_{j}.JPEG\t{wnids[label]}\t{j}\t1\t{40 + j}\t50\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    write_image(folder / "test" / "images" / "test_0.JPEG", (255, 0, 0), (side, side))
    return val_labels


def test_tinyimagenet_official_layout_class_order_and_val_split(tmp_path: Path) -> None:
    val_labels = write_tinyimagenet(tmp_path)
    d = load("tinyimagenet", tmp_path)
    check_images(d, 64)  # native size by default
    assert d.name == "tinyimagenet" and d.class_names == TINY_WNIDS  # wnids.txt's line order
    assert (len(d.train), len(d.test)) == (9, 6)  # the unlabelled test/ folder is not read
    assert d.train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert_colours(d.train.x, [tiny_train_colour(c, k) for c in range(3) for k in range(3)])
    assert d.test.y.tolist() == val_labels  # val_annotations.txt, in its order
    assert_colours(d.test.x, [tiny_val_colour(j) for j in range(6)])
    assert (d.mean, d.std) == (IMAGENET_MEAN, IMAGENET_STD)

    small = load("tinyimagenet", tmp_path, image_size=16, norm="data")
    check_images(small, 16)
    assert_colours(small.test.x, [tiny_val_colour(j) for j in range(6)])
    assert small.train.y.tolist() == d.train.y.tolist()
    assert (small.mean, small.std) == channel_stats(small.train.x)
    assert load("tinyimagenet", tmp_path, image_size=16, norm="data").checksum == small.checksum


def test_tinyimagenet_val_sorted_into_class_folders_and_alias_folder(tmp_path: Path) -> None:
    """The val images moved to val/<wnid>/images/ (a common reorganisation) still load, from the
    `tinyimagenet` alias folder."""
    val_labels = write_tinyimagenet(tmp_path)
    folder = tmp_path / "tiny-imagenet-200"
    for j, label in enumerate(val_labels):
        target = folder / "val" / TINY_WNIDS[label] / "images" / f"val_{j}.JPEG"
        target.parent.mkdir(parents=True, exist_ok=True)
        (folder / "val" / "images" / f"val_{j}.JPEG").rename(target)
    folder.rename(tmp_path / "tinyimagenet")
    d = load("tinyimagenet", tmp_path, image_size=8)
    assert d.test.y.tolist() == val_labels


def test_tinyimagenet_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        source("tinyimagenet", tmp_path).check_available()
    message = str(info.value)
    for part in ("wnids.txt", "train/", "val/val_annotations.txt", "clbench cannot download"):
        assert part in message
    for folder in ("tiny-imagenet-200", "tinyimagenet"):
        assert str(tmp_path / folder) in message
    write_tinyimagenet(tmp_path)
    folder = tmp_path / "tiny-imagenet-200"
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks val/val_annotations\.txt") as info:
        load("tinyimagenet", tmp_path)
    assert str(folder) in str(info.value)
    (folder / "val" / "val_annotations.txt").write_text("val_9.JPEG\tn01443537\t0\t0\t1\t1\n")
    with pytest.raises(DataNotFoundError, match=r"val_9\.JPEG not found.*line 1"):
        load("tinyimagenet", tmp_path)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn09999999\t0\t0\t1\t1\n")
    with pytest.raises(DataNotFoundError, match=r"line 1: 'n09999999' is not in"):
        load("tinyimagenet", tmp_path)
    for image in (folder / "train" / "n02099601" / "images").iterdir():
        image.unlink()
    with pytest.raises(DataNotFoundError, match=r"no images in .*n02099601"):
        load("tinyimagenet", tmp_path)
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        source("tinyimagenet", tmp_path, image_size=0)


# --------------------------------------------------------------------------- CUB-200-2011

CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")
CUB_IS_TRAIN = (1, 0, 1, 0, 1, 1, 1, 1, 0)  # image ids 1..9, three per class


def cub_colour(image_id: int) -> Colour:
    return (20 * image_id, 220 - 20 * image_id, 128)


def write_cub(folder: Path) -> None:
    """CUB_200_2011 as the tgz unpacks: the four index files (space-separated, 1-based ids) and
    images/<class>/<name>.jpg of assorted sizes, one greyscale."""
    images, labels, split = [], [], []
    for image_id in range(1, 10):
        label = (image_id - 1) // 3 + 1
        cls = CUB_CLASSES[label - 1]
        relative = f"{cls}/{cls[4:]}_{image_id:04d}_{100 + image_id}.jpg"
        grey = image_id == 5
        colour = (100, 100, 100) if grey else cub_colour(image_id)
        write_image(folder / "images" / relative, colour, (30 + 4 * image_id, 24), grey=grey)
        images.append(f"{image_id} {relative}\n")
        labels.append(f"{image_id} {label}\n")
        split.append(f"{image_id} {CUB_IS_TRAIN[image_id - 1]}\n")
    (folder / "images.txt").write_text("".join(images))
    (folder / "image_class_labels.txt").write_text("".join(labels))
    (folder / "train_test_split.txt").write_text("".join(split))
    (folder / "classes.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CUB_CLASSES, 1)))
    (folder / "bounding_boxes.txt").write_text(
        "".join(f"{i} 0.0 0.0 8.0 8.0\n" for i in range(1, 10))
    )


def test_cub200_official_split_labels_and_resize(tmp_path: Path) -> None:
    write_cub(tmp_path / "CUB_200_2011")
    d = load("cub200", tmp_path, image_size=12)
    check_images(d, 12)
    assert d.name == "cub200" and d.class_names == CUB_CLASSES
    train_ids = [i for i in range(1, 10) if CUB_IS_TRAIN[i - 1]]
    test_ids = [i for i in range(1, 10) if not CUB_IS_TRAIN[i - 1]]
    assert d.train.y.tolist() == [(i - 1) // 3 for i in train_ids]  # label = class id - 1
    assert d.test.y.tolist() == [(i - 1) // 3 for i in test_ids]
    grey = (100, 100, 100)
    assert_colours(d.train.x, [grey if i == 5 else cub_colour(i) for i in train_ids])
    assert_colours(d.test.x, [cub_colour(i) for i in test_ids])
    assert source("cub200", tmp_path).config.image_size == 224  # the default


def test_cub200_in_the_root_and_missing_files(tmp_path: Path) -> None:
    write_cub(tmp_path)  # the root itself is the last candidate
    assert len(load("cub200", tmp_path, image_size=4).train) == 6
    (tmp_path / "classes.txt").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks classes\.txt") as info:
        source("cub200", tmp_path).check_available()
    message = str(info.value)
    for part in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "images/"):
        assert part in message
    for folder in ("CUB_200_2011", "cub200"):
        assert str(tmp_path / folder) in message
    (tmp_path / "classes.txt").write_text(
        "".join(f"{i} {c}\n" for i, c in enumerate(CUB_CLASSES, 1))
    )
    missing = next((tmp_path / "images" / CUB_CLASSES[1]).iterdir())
    missing.unlink()
    with pytest.raises(
        DataNotFoundError, match=rf"{missing.name} not found \(listed in .*images\.txt, line 4\)"
    ):
        load("cub200", tmp_path, image_size=4)
    write_cub(tmp_path)
    (tmp_path / "image_class_labels.txt").write_text("1 1\n")
    with pytest.raises(
        DataNotFoundError, match=r"image_class_labels\.txt: has no line for image 2"
    ):
        load("cub200", tmp_path, image_size=4)
    (tmp_path / "image_class_labels.txt").write_text("".join(f"{i} 4\n" for i in range(1, 10)))
    with pytest.raises(DataNotFoundError, match=r"line 1: class '4' is not in"):
        load("cub200", tmp_path, image_size=4)


# --------------------------------------------------------------------------- ImageNet-R

INR_WNIDS = ("n01443537", "n01833805", "n02007558")  # sorted
INR_PER_CLASS = (5, 5, 6)


def inr_colour(label: int, k: int) -> Colour:
    return (30 + 80 * label, 30 + 30 * k, 180)


def write_imagenet_r(folder: Path) -> list[tuple[str, Colour]]:
    """imagenet-r/<wnid>/<rendition>_<k>.jpg, plus README.txt; returns (file, colour) in sorted
    file order."""
    files = []
    for label, wnid in enumerate(INR_WNIDS):
        for k in range(INR_PER_CLASS[label]):
            kind = ("art", "cartoon", "sketch")[k % 3]
            name = f"{wnid}/{kind}_{k}.jpg"
            write_image(folder / name, inr_colour(label, k), (20 + 3 * k, 16 + label))
            files.append((name, inr_colour(label, k)))
    (folder / "README.txt").write_text("ImageNet-R\n")
    return sorted(files)


def test_imagenet_r_stratified_deterministic_split(tmp_path: Path) -> None:
    files = write_imagenet_r(tmp_path / "imagenet-r")
    d = load("imagenet_r", tmp_path, image_size=10)
    check_images(d, 10)
    assert d.name == "imagenet_r" and d.class_names == INR_WNIDS
    labels = np.array([INR_WNIDS.index(f.split("/")[0]) for f, _ in files])
    train_idx, test_idx = stratified_split(labels, 0.2, 0)
    assert d.train.y.tolist() == labels[train_idx].tolist()
    assert d.test.y.tolist() == labels[test_idx].tolist()
    assert torch.bincount(d.test.y).tolist() == [1, 1, 1]  # round(0.2 * n) of every class
    assert_colours(d.train.x, [files[i][1] for i in train_idx])
    assert_colours(d.test.x, [files[i][1] for i in test_idx])
    again = load("imagenet_r", tmp_path, image_size=10)
    other = load("imagenet_r", tmp_path, image_size=10, split_seed=3)
    assert again.checksum == d.checksum and other.checksum != d.checksum
    assert torch.bincount(other.test.y).tolist() == [1, 1, 1]
    half = load("imagenet_r", tmp_path, image_size=10, test_fraction=0.5)
    assert torch.bincount(half.test.y).tolist() == [2, 2, 3]  # round half to even: 2.5 -> 2


def test_imagenet_r_presplit_folders_and_root(tmp_path: Path) -> None:
    write_imagenet_r(tmp_path / "imagenet_r" / "train")
    write_image(tmp_path / "imagenet_r" / "val" / INR_WNIDS[2] / "a.jpg", (9, 9, 9), (8, 8))
    d = load("imagenet_r", tmp_path, image_size=6)
    assert (len(d.train), len(d.test)) == (16, 1) and d.test.y.tolist() == [2]
    root = tmp_path / "flat"
    write_imagenet_r(root)  # wnid folders directly in the root
    write_image(root / "tiny-imagenet-200" / "x" / "y.jpg", (0, 0, 0), (8, 8))  # not a class
    d = load("imagenet_r", root, image_size=6)
    assert d.class_names == INR_WNIDS and len(d.train) + len(d.test) == 16


def test_imagenet_r_coda_prompt_split_files(tmp_path: Path) -> None:
    files = write_imagenet_r(tmp_path / "imagenet-r")
    target_of = {INR_WNIDS[0]: 2, INR_WNIDS[1]: 0, INR_WNIDS[2]: 1}  # CODA-Prompt's numbering
    test_files = [f for i, (f, _) in enumerate(files) if i % 4 == 1]
    train_files = [f for f, _ in files if f not in test_files][::-1]  # any order: kept
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, chosen in (("train", train_files), ("test", test_files)):
        content = {
            "data": [f"data/imagenet-r/{f}" for f in chosen],
            "targets": [target_of[f.split("/")[0]] for f in chosen],
        }
        (splits / f"imagenet-r_{name}.yaml").write_text(yaml.safe_dump(content))
    d = load("imagenet_r", tmp_path, image_size=6, split_dir="splits")  # relative to the root
    assert d.class_names == (INR_WNIDS[1], INR_WNIDS[2], INR_WNIDS[0])
    assert d.train.y.tolist() == [target_of[f.split("/")[0]] for f in train_files]
    assert d.test.y.tolist() == [target_of[f.split("/")[0]] for f in test_files]
    colour = dict(files)
    assert_colours(d.test.x, [colour[f] for f in test_files])

    (splits / "imagenet-r_test.yaml").write_text(
        yaml.safe_dump({"data": ["data/imagenet-r/n01443537/gone.jpg"], "targets": [2]})
    )
    with pytest.raises(DataNotFoundError, match=r"gone\.jpg not found \(entry 0 of .*test\.yaml"):
        load("imagenet_r", tmp_path, image_size=6, split_dir=str(splits))
    (splits / "imagenet-r_test.yaml").unlink()
    with pytest.raises(DataNotFoundError, match=r"imagenet-r_test\.yaml") as info:
        source("imagenet_r", tmp_path, split_dir="splits").check_available()
    assert str(splits / "imagenet-r_test.yaml") in str(info.value)


def test_imagenet_r_missing(tmp_path: Path) -> None:
    (tmp_path / "imagenet-r").mkdir()
    (tmp_path / "imagenet-r" / "README.txt").write_text("x")
    with pytest.raises(DataNotFoundError, match="<wnid>/ class folders") as info:
        source("imagenet_r", tmp_path).check_available()
    for folder in ("imagenet-r", "imagenet_r"):
        assert str(tmp_path / folder) in str(info.value)
    (tmp_path / "imagenet-r" / INR_WNIDS[0]).mkdir()  # a class folder, but no images
    with pytest.raises(DataNotFoundError, match="no images"):
        load("imagenet_r", tmp_path)


def test_sources_are_registered_and_documented() -> None:
    for name in ("tinyimagenet", "cub200", "imagenet_r"):
        cls = DATASETS.get(name)
        assert cls.summary and cls.needs_files
        assert all(info.description for info in cls.Config.model_fields.values())
    defaults = {
        n: DATASETS.get(n).Config().image_size for n in ("tinyimagenet", "cub200", "imagenet_r")
    }
    assert defaults == {"tinyimagenet": 64, "cub200": 224, "imagenet_r": 224}


# --------------------------------------------------------------------------- end to end


def test_clbench_run_on_tiny_fake_tinyimagenet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wnids = ("n01443537", "n01629819", "n01641577", "n01644900")
    write_tinyimagenet(tmp_path / "data", wnids=wnids, per_class=4, side=20)
    code = main(
        [
            "run",
            "--quiet",
            "data.name=tinyimagenet",
            f"data.root={tmp_path / 'data'}",
            "data.image_size=16",
            "scenario.n_experiences=2",
            "model.name=slim_resnet18",
            "model.nf=4",
            "strategy.name=naive",
            "train.epochs=1",
            "train.batch_size=8",
            "eval.subset_size=8",
            "threads=1",
            f"output.root={tmp_path / 'out'}",
            "output.plot=false",
        ]
    )
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "out").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
