from __future__ import annotations

import os
from pathlib import Path

from cli_helpers import make_image_folder  # tests/helpers/
import numpy as np
import pytest
import torch

from optuna_nas.training import ImageFolderDataModule


def test_reads_resizes_splits_and_normalizes(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "shapes")
    (root / "class_0" / "notes.txt").write_text("not an image")  # ignored
    dm = ImageFolderDataModule(root=root, image_size=8, batch_size=4, val_fraction=0.25)
    assert dm.classes == ["class_0", "class_1", "class_2"]
    assert (dm.num_classes, dm.in_channels, dm.image_size, dm.color_mode) == (3, 3, 8, "rgb")
    dm.prepare_data()  # nothing to do
    dm.setup("fit")
    x, y = dm._tensors["train"]
    assert x.shape == (18, 3, 8, 8) and sorted(torch.bincount(y).tolist()) == [6, 6, 6]
    assert dm._tensors["val"][0].shape == (6, 3, 8, 8)
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    batch_x, batch_y = next(iter(dm.train_dataloader()))
    assert batch_x.shape == (4, 3, 8, 8) and batch_y.dtype == torch.long
    # The split is a function of the seed only.
    again = ImageFolderDataModule(root=root, image_size=8, val_fraction=0.25)
    again.setup("fit")
    assert np.array_equal(again.indices["val"], dm.indices["val"])


def test_grayscale_is_detected_or_forced(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "gray", classes=2, per_class=4, gray=True)
    dm = ImageFolderDataModule(root=root, image_size=6, subset=6, augment=True)
    assert dm.in_channels == 1 and dm.color_mode == "grayscale"
    dm.setup()
    assert dm._tensors["train"][0].shape[1:] == (1, 6, 6)
    assert next(iter(dm.train_dataloader()))[0].shape[1] == 1
    rgb = ImageFolderDataModule(root=root, image_size=6, color_mode="rgb")
    assert rgb.in_channels == 3


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("file", "is not a folder"),
        ("one_class", "at least 2"),
        ("empty_class", "hold no image file"),
    ],
)
def test_bad_folders_are_clear_errors(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "data"
    if layout == "file":
        root.write_text("x")
    elif layout == "one_class":
        make_image_folder(root, classes=1, per_class=2)
    elif layout == "empty_class":
        make_image_folder(root, classes=2, per_class=2)
        (root / "class_9").mkdir()
    with pytest.raises(ValueError, match=message) as info:
        ImageFolderDataModule(root=root)
    if layout == "empty_class":
        assert "class_9" in str(info.value)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "data", classes=2, per_class=3)
    (root / "class_1" / "broken.png").write_bytes(b"not a png at all")
    dm = ImageFolderDataModule(root=root, image_size=8)
    with pytest.raises(ValueError, match=r"broken\.png"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 2}, "image_size"),
        ({"color_mode": "cmyk"}, "color_mode"),
        ({"subset": 3}, "subset"),
        ({"subset": 1000}, "exceeds"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "must be < 1"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    root = make_image_folder(tmp_path / "data", classes=2, per_class=3)
    with pytest.raises(ValueError, match=message):
        ImageFolderDataModule(root=os.fspath(root), **kwargs)  # type: ignore[arg-type]
