"""Tests of optuna_nas.training._datamodules (CIFAR-10 on a generated folder, embedded data)."""

from __future__ import annotations

from collections import Counter
import hashlib
from pathlib import Path
import pickle
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
import numpy as np
import pytest
import torch

from optuna_nas.training import ChildModule
from optuna_nas.training import CIFAR10DataModule
from optuna_nas.training import DeviceTensorLoader
from optuna_nas.training import EmbeddedDataModule


# ------------------------------------------------------------------------------ embedded data
def test_embedded_mnist_split_is_stratified_disjoint_and_deterministic() -> None:
    dm = EmbeddedDataModule(subset=500, val_fraction=0.2, seed=0)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, 28)
    dm.setup("fit")
    assert len(np.intersect1d(dm.indices["train"], dm.indices["val"])) == 0
    x_train, y_train = dm._tensors["train"]
    x_val, y_val = dm._tensors["val"]
    assert x_train.shape == (400, 1, 28, 28) and x_val.shape == (100, 1, 28, 28)
    assert Counter(y_val.tolist()) == dict.fromkeys(range(10), 10)
    # Normalized with the training split's statistics.
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-3

    same = EmbeddedDataModule(subset=500, val_fraction=0.2, seed=0)
    same.setup("fit")
    assert torch.equal(same._tensors["val"][0], x_val)
    other = EmbeddedDataModule(subset=500, val_fraction=0.2, seed=1)
    other.setup("fit")
    assert not np.array_equal(other.indices["val"], dm.indices["val"])


def test_embedded_digits_resize_and_test_split() -> None:
    dm = EmbeddedDataModule(dataset="digits", image_size=16, test_fraction=0.1, batch_size=32)
    assert dm.image_size == 16
    dm.setup()
    sizes = {k: len(v) for k, v in dm.indices.items()}
    assert sum(sizes.values()) == 1797 and 150 < sizes["test"] < 210
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 16, 16) and y.dtype == torch.int64
    assert sum(len(b[1]) for b in dm.test_dataloader()) == sizes["test"]


def test_embedded_train_loader_serves_the_training_split_each_epoch() -> None:
    dm = EmbeddedDataModule(dataset="digits", subset=300, batch_size=64)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceTensorLoader)
    labels = torch.cat([y for _, y in loader])
    # drop_last: whole batches only, drawn without repetition from the training split.
    assert len(labels) == (240 // 64) * 64
    expected = Counter(dm._tensors["train"][1].tolist())
    assert all(Counter(labels.tolist())[c] <= expected[c] for c in expected)


def test_embedded_dataloader_path_and_no_test_split() -> None:
    dm = EmbeddedDataModule(dataset="digits", subset=200, device_resident=False, augment=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert sum(len(b[1]) for b in dm.val_dataloader()) == 40
    with pytest.raises(RuntimeError, match="no test split"):
        dm.test_dataloader()


def test_dataloader_path_serves_the_order_of_the_device_resident_path() -> None:
    def epochs(device_resident: bool) -> list[list[int]]:
        dm = EmbeddedDataModule(
            dataset="digits", subset=200, batch_size=32, device_resident=device_resident
        )
        dm.setup("fit")
        loader = dm.train_dataloader()
        return [torch.cat([y for _, y in loader]).tolist() for _ in range(2)]

    on_device = epochs(True)
    assert on_device[0] != on_device[1]
    assert epochs(False) == on_device


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset": "cifar"},
        {"val_fraction": 0.0},
        {"val_fraction": 0.6, "test_fraction": 0.5},
        {"subset": 5},
        {"batch_size": 0},
        {"image_size": 2},
        {"device_resident": True, "num_workers": 2},
    ],
)
def test_embedded_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmbeddedDataModule(**kwargs)


# ------------------------------------------------------------------------------ CIFAR-10
class FakeCIFAR:
    """A ``cifar-10-batches-py`` folder in torchvision's format, with its images and labels."""

    def __init__(self, root: Path, n_train: int = 200, n_test: int = 50) -> None:
        self.root = root
        rng = np.random.default_rng(0)
        self.train = rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8)
        self.test = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
        self.train_labels = [i % 10 for i in range(n_train)]
        self.test_labels = [i % 10 for i in range(n_test)]
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        self.files: dict[str, str] = {}
        chunks = np.array_split(np.arange(n_train), 5)
        for k, idx in enumerate(chunks, start=1):
            labels = [self.train_labels[i] for i in idx]
            self._write(
                folder, f"data_batch_{k}", {"data": self._rows(self.train[idx]), "labels": labels}
            )
        self._write(
            folder, "test_batch", {"data": self._rows(self.test), "labels": self.test_labels}
        )
        self._write(folder, "batches.meta", {"label_names": [f"class{c}" for c in range(10)]})

    @staticmethod
    def _rows(images: np.ndarray) -> np.ndarray:
        return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # CIFAR's CHW rows

    def _write(self, folder: Path, name: str, entry: dict[str, Any]) -> None:
        payload = pickle.dumps(entry)
        (folder / name).write_bytes(payload)
        self.files[name] = hashlib.md5(payload).hexdigest()


@pytest.fixture
def fake_cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCIFAR:
    """A fake CIFAR-10 folder read by torchvision's own CIFAR10 class (checksums patched)."""
    from torchvision.datasets import CIFAR10

    fake = FakeCIFAR(tmp_path / "cifar")
    train = [[f"data_batch_{k}", fake.files[f"data_batch_{k}"]] for k in range(1, 6)]
    monkeypatch.setattr(CIFAR10, "train_list", train)
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", fake.files["test_batch"]]])
    meta = {"filename": "batches.meta", "key": "label_names", "md5": fake.files["batches.meta"]}
    monkeypatch.setattr(CIFAR10, "meta", meta)
    return fake


def test_cifar_prepare_data_downloads_both_sets(
    fake_cifar: FakeCIFAR, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import CIFAR10

    downloads: list[bool] = []
    real_init = CIFAR10.__init__

    def recording_init(self: Any, *args: Any, download: bool = False, **kwargs: Any) -> None:
        downloads.append(download)
        real_init(self, *args, download=download, **kwargs)  # verified: no network needed

    monkeypatch.setattr(CIFAR10, "__init__", recording_init)
    dm = CIFAR10DataModule(data_dir=str(fake_cifar.root), num_workers=0)
    dm.prepare_data()
    assert downloads == [True, True]
    assert not dm.indices  # prepare_data sets no state
    dm.setup("fit")
    assert downloads[2:] and not any(downloads[2:])


def test_cifar_search_split_never_uses_the_test_set(fake_cifar: FakeCIFAR) -> None:
    dm = CIFAR10DataModule(data_dir=str(fake_cifar.root), num_workers=0, batch_size=16, seed=0)
    dm.setup("fit")
    train, val = dm.indices["train"], dm.indices["val"]
    assert len(train) == len(val) == 100 and len(np.intersect1d(train, val)) == 0
    labels = np.arange(200) % 10
    assert Counter(labels[val].tolist()) == dict.fromkeys(range(10), 10)
    # Validation images come from the training set, without augmentation.
    val_set = dm._datasets["val"]
    x0, _ = val_set[0]
    assert torch.equal(x0, val_set[0][0])
    raw = torch.from_numpy(fake_cifar.train[val[0]]).permute(2, 0, 1) / 255.0
    mean = torch.tensor(dm.mean).view(3, 1, 1)
    std = torch.tensor(dm.std).view(3, 1, 1)
    assert torch.allclose(x0, (raw - mean) / std, atol=1e-5)
    # Training images are augmented: random crops/flips differ between two reads.
    train_set = dm._datasets["train"]
    assert any(not torch.equal(train_set[0][0], train_set[0][0]) for _ in range(5))
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32)
    dm.setup("test")
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 50


def test_cifar_final_training_uses_the_test_set_for_validation(fake_cifar: FakeCIFAR) -> None:
    dm = CIFAR10DataModule(data_dir=str(fake_cifar.root), num_workers=0, search_split=False)
    dm.setup("fit")
    assert len(dm.indices["train"]) == 200
    assert sum(len(b[1]) for b in dm.val_dataloader()) == 50


def test_cifar_device_resident_matches_torchvision_normalization(fake_cifar: FakeCIFAR) -> None:
    root = str(fake_cifar.root)
    dm = CIFAR10DataModule(data_dir=root, device_resident=True, batch_size=32, subset=100)
    dm.setup("fit")
    x_val, y_val = dm._tensors["val"]
    assert x_val.shape == (50, 3, 32, 32)
    reference = CIFAR10DataModule(data_dir=root, num_workers=0, subset=100)
    reference.setup("fit")
    assert np.array_equal(reference.indices["val"], dm.indices["val"])
    x_ref = torch.stack([reference._datasets["val"][i][0] for i in range(50)])
    assert torch.allclose(x_val, x_ref, atol=1e-5)
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceTensorLoader) and loader.augment is not None
    assert next(iter(loader))[0].shape == (32, 3, 32, 32)


def test_cifar_device_resident_pads_with_black(fake_cifar: FakeCIFAR) -> None:
    dm = CIFAR10DataModule(data_dir=str(fake_cifar.root), device_resident=True)
    augment = dm.batch_augmentation()
    assert augment is not None
    # A white image (all ones) normalized, then cropped: the border is black (0) once undone.
    mean = torch.tensor(dm.mean).view(1, 3, 1, 1)
    std = torch.tensor(dm.std).view(1, 3, 1, 1)
    white = (torch.ones(64, 3, 32, 32) - mean) / std
    raw = augment(white, torch.Generator().manual_seed(0)) * std + mean
    assert set(raw.round(decimals=5).unique().tolist()) == {0.0, 1.0}


def test_cifar_num_workers_default_and_conflict() -> None:
    assert CIFAR10DataModule(data_dir="x").num_workers == 4
    assert CIFAR10DataModule(data_dir="x", device_resident=True).num_workers == 0
    assert CIFAR10DataModule(data_dir="x", num_workers=0).num_workers == 0
    with pytest.raises(ValueError, match="num_workers=2"):
        CIFAR10DataModule(data_dir="x", device_resident=True, num_workers=2)


def test_cifar_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        CIFAR10DataModule(data_dir="x", val_fraction=1.0)
    with pytest.raises(ValueError, match="subset"):
        CIFAR10DataModule(data_dir="x", subset=1)
    with pytest.raises(ValueError, match="-1"):
        CIFAR10DataModule(data_dir="x", num_workers=-1)


# ------------------------------------------------------------------------------ resume
class _RecordingModule(ChildModule):
    """Records a fingerprint of every training batch, per epoch."""

    def __init__(self, seen: dict[int, list[float]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen = seen

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        fingerprint = float((x.double() * torch.arange(x[0].numel()).view(x[0].shape)).sum())
        self.seen.setdefault(self.current_epoch, []).append(fingerprint + float(y.sum()))
        return super().training_step(batch, batch_idx)


def _fit(
    dm: Any, tmp_path: Path, tag: str, max_epochs: int, ckpt: str | None = None
) -> dict[int, list[float]]:
    seen: dict[int, list[float]] = {}
    module = _RecordingModule(
        seen,
        network=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)),
        num_classes=10,
    )
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename=tag + "-{epoch}")],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    return seen


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@pytest.mark.parametrize("device_resident", [True, False])
def test_resumed_fit_sees_the_batches_of_an_uninterrupted_one(
    tmp_path: Path, device_resident: bool
) -> None:
    def datamodule() -> EmbeddedDataModule:
        return EmbeddedDataModule(
            dataset="digits",
            subset=200,
            batch_size=32,
            augment=True,
            seed=3,
            device_resident=device_resident,
        )

    full = _fit(datamodule(), tmp_path, "full", 3)
    _fit(datamodule(), tmp_path, "part", 1)
    resumed = _fit(datamodule(), tmp_path, "resumed", 3, str(tmp_path / "part-epoch=0.ckpt"))
    assert sorted(resumed) == [1, 2]
    assert full[0] != full[1]  # a new order every epoch
    assert resumed[1] == full[1] and resumed[2] == full[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_resident_batches_live_on_the_gpu() -> None:
    import lightning.pytorch as pl

    dm = EmbeddedDataModule(dataset="digits", subset=200, batch_size=32, augment=True)
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_epochs=1, logger=False)
    dm.trainer = trainer
    trainer.strategy.setup_environment()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.is_cuda and y.is_cuda and x.shape == (32, 1, 8, 8)


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@pytest.mark.parametrize("device_resident", [True, False])
def test_every_fit_on_one_datamodule_sees_the_same_batches(
    tmp_path: Path, device_resident: bool
) -> None:
    # NASObjective trains every trial on one DataModule: trial 2 must not continue trial 1's draws.
    dm = EmbeddedDataModule(
        dataset="digits", subset=200, batch_size=32, augment=True, device_resident=device_resident
    )
    assert _fit(dm, tmp_path, "first", 1) == _fit(dm, tmp_path, "second", 1)


def test_cifar_cutout_follows_the_per_image_transforms(fake_cifar: FakeCIFAR) -> None:
    # The DataLoader path crops and flips with torchvision per image; the Cutout comes after,
    # on the device, in on_after_batch_transfer (after normalization, as in DARTS).
    dm = CIFAR10DataModule(data_dir=str(fake_cifar.root), batch_size=16, cutout=8, num_workers=0)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(training=True, current_epoch=0)  # type: ignore[assignment]
    cut, _ = dm.on_after_batch_transfer((x.clone(), y), 0)
    changed = cut != x
    assert bool((cut[changed] == 0).all())
    per_image = changed[:, 0].flatten(1).sum(1)
    assert 1 <= int(per_image.min()) <= int(per_image.max()) <= 64
    dm.trainer = SimpleNamespace(training=False, current_epoch=0)  # type: ignore[assignment]
    assert torch.equal(dm.on_after_batch_transfer((x, y), 0)[0], x)  # not in evaluation
    with pytest.raises(ValueError, match="cutout.*32"):
        CIFAR10DataModule(data_dir=str(fake_cifar.root), cutout=32)
