from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from PIL import Image
import pytest
import torch

from optuna_nas.training import CIFAR10DataModule
from optuna_nas.training import DeviceTensorLoader
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import RandomCropFlip
from optuna_nas.training import stratified_split


# ------------------------------------------------------------------------------ stratified_split
def test_stratified_split_is_disjoint_stratified_and_deterministic() -> None:
    labels = np.repeat(np.arange(4), [40, 40, 20, 100])
    train, val = stratified_split(labels, (0.25,), seed=3)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert Counter(labels[val].tolist()) == {0: 10, 1: 10, 2: 5, 3: 25}
    again = stratified_split(labels, (0.25,), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = stratified_split(labels, (0.25,), seed=4)
    assert not np.array_equal(val, other[1])


def test_stratified_split_subset_and_three_parts() -> None:
    labels = np.repeat(np.arange(10), 50)
    train, val, test = stratified_split(labels, (0.2, 0.1), seed=0, subset=200)
    assert len(train) + len(val) + len(test) == 200
    assert Counter(labels[val].tolist()) == dict.fromkeys(range(10), 4)
    assert Counter(labels[test].tolist()) == dict.fromkeys(range(10), 2)
    assert len(set(train) | set(val) | set(test)) == 200


@pytest.mark.parametrize(
    ("fractions", "subset"), [((1.0,), None), ((0.6, 0.5), None), ((-0.1,), None), ((0.2,), 0)]
)
def test_stratified_split_rejects_bad_arguments(fractions: tuple[float, ...], subset: Any) -> None:
    with pytest.raises(ValueError):
        stratified_split(np.zeros(10), fractions, seed=0, subset=subset)


# ------------------------------------------------------------------------------ augmentation
def _is_shifted_crop(out: torch.Tensor, x: torch.Tensor, pad: int, fill: float) -> bool:
    padded = torch.nn.functional.pad(x, (pad,) * 4, value=fill)
    h, w = x.shape[-2:]
    return any(
        torch.equal(out, padded[:, i : i + h, j : j + w])
        for i in range(2 * pad + 1)
        for j in range(2 * pad + 1)
    )


def test_random_crop_is_a_shift_of_the_padded_image() -> None:
    x = torch.randn(16, 2, 6, 6)
    out = RandomCropFlip(padding=2, hflip=False, fill=-3.0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert all(_is_shifted_crop(out[b], x[b], 2, -3.0) for b in range(16))
    # With 25 possible offsets, 16 images are very unlikely to all stay centred.
    assert not torch.equal(out, x)


def test_random_flip_flips_about_half() -> None:
    x = torch.randn(400, 1, 4, 4)
    out = RandomCropFlip(padding=0, hflip=True)(x, torch.Generator().manual_seed(0))
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    assert bool((same | flipped).all())
    assert 120 < int(flipped.sum()) < 280


def test_random_crop_per_channel_fill() -> None:
    x = torch.zeros(32, 3, 4, 4)
    fill = (1.0, 2.0, 3.0)
    out = RandomCropFlip(padding=4, hflip=False, fill=fill)(x)
    for c, value in enumerate(fill):
        assert set(out[:, c].unique().tolist()) <= {0.0, value}


# ------------------------------------------------------------------------------ device loader
def _indexed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds the sample's index, so batches reveal which samples."""
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 3, 3).clone()
    return images, torch.arange(n) % 7


def _epoch_ids(loader: DeviceTensorLoader) -> list[int]:
    ids: list[int] = []
    for x, y in loader:
        batch_ids = x[:, 0, 0, 0].long()
        assert torch.equal(y, batch_ids % 7)  # images and labels stay paired
        ids.extend(batch_ids.tolist())
    return ids


def test_device_loader_covers_every_sample_once_per_epoch() -> None:
    x, y = _indexed(103)
    loader = DeviceTensorLoader(x, y, batch_size=10, shuffle=True, seed=1)
    assert len(loader) == 11
    first, second = _epoch_ids(loader), _epoch_ids(loader)
    assert sorted(first) == sorted(second) == list(range(103))
    assert first != second  # a new permutation each epoch
    assert _epoch_ids(DeviceTensorLoader(x, y, batch_size=10, shuffle=True, seed=1)) == first


def test_device_loader_drop_last_and_no_shuffle() -> None:
    x, y = _indexed(25)
    loader = DeviceTensorLoader(x, y, batch_size=10, drop_last=True)
    assert len(loader) == 2
    assert _epoch_ids(loader) == list(range(20))


def test_device_loader_shards_are_disjoint_across_ranks() -> None:
    x, y = _indexed(50)
    shards = [
        _epoch_ids(DeviceTensorLoader(x, y, batch_size=8, shuffle=True, rank=r, world_size=3))
        for r in range(3)
    ]
    assert all(len(s) == 16 for s in shards)
    assert len(set().union(*map(set, shards))) == 48


def test_device_loader_applies_augmentation_and_keeps_device() -> None:
    x, y = _indexed(20)
    calls = []

    def augment(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        calls.append(batch.shape[0])
        return batch + 1000

    loader = DeviceTensorLoader(x, y, batch_size=8, augment=augment)
    batches = list(loader)
    assert calls == [8, 8, 4]
    assert all(b[0].min() >= 1000 and b[0].device == x.device for b in batches)


def test_device_loader_validates() -> None:
    x, y = _indexed(10)
    with pytest.raises(ValueError, match="differ in length"):
        DeviceTensorLoader(x, y[:5], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceTensorLoader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        DeviceTensorLoader(x, y, batch_size=2, rank=2, world_size=2)


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
class _FakeCIFAR10:
    """Stands in for torchvision's CIFAR10: same attributes, no files, records downloads."""

    downloads: list[bool] = []

    def __init__(
        self, root: str, train: bool = True, transform: Any = None, download: bool = False
    ) -> None:
        _FakeCIFAR10.downloads.append(download)
        n = 200 if train else 50
        rng = np.random.default_rng(0 if train else 1)
        self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        self.targets = [i % 10 for i in range(n)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


@pytest.fixture
def fake_cifar(monkeypatch: pytest.MonkeyPatch) -> type[_FakeCIFAR10]:
    import torchvision

    _FakeCIFAR10.downloads = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _FakeCIFAR10)
    return _FakeCIFAR10


def test_cifar_prepare_data_downloads_both_sets(fake_cifar: type[_FakeCIFAR10]) -> None:
    dm = CIFAR10DataModule(data_dir="unused", num_workers=0)
    dm.prepare_data()
    assert fake_cifar.downloads == [True, True]
    assert not dm.indices  # prepare_data sets no state
    dm.setup("fit")
    assert fake_cifar.downloads[2:] and not any(fake_cifar.downloads[2:])


def test_cifar_search_split_never_uses_the_test_set(fake_cifar: type[_FakeCIFAR10]) -> None:
    dm = CIFAR10DataModule(data_dir="unused", num_workers=0, batch_size=16, seed=0)
    dm.setup("fit")
    train, val = dm.indices["train"], dm.indices["val"]
    assert len(train) == len(val) == 100 and len(np.intersect1d(train, val)) == 0
    labels = np.arange(200) % 10
    assert Counter(labels[val].tolist()) == dict.fromkeys(range(10), 10)
    # Validation images come from the training set, without augmentation.
    val_set = dm._datasets["val"]
    x0, _ = val_set[0]
    assert torch.equal(x0, val_set[0][0])
    raw = torch.from_numpy(_FakeCIFAR10("", train=True).data[val[0]]).permute(2, 0, 1) / 255.0
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


def test_cifar_final_training_uses_the_test_set_for_validation(
    fake_cifar: type[_FakeCIFAR10],
) -> None:
    dm = CIFAR10DataModule(data_dir="unused", num_workers=0, search_split=False)
    dm.setup("fit")
    assert len(dm.indices["train"]) == 200
    assert sum(len(b[1]) for b in dm.val_dataloader()) == 50


def test_cifar_device_resident_matches_torchvision_normalization(
    fake_cifar: type[_FakeCIFAR10],
) -> None:
    dm = CIFAR10DataModule(data_dir="unused", device_resident=True, batch_size=32, subset=100)
    dm.setup("fit")
    x_val, y_val = dm._tensors["val"]
    assert x_val.shape == (50, 3, 32, 32)
    reference = CIFAR10DataModule(data_dir="unused", num_workers=0, subset=100)
    reference.setup("fit")
    assert np.array_equal(reference.indices["val"], dm.indices["val"])
    x_ref = torch.stack([reference._datasets["val"][i][0] for i in range(50)])
    assert torch.allclose(x_val, x_ref, atol=1e-5)
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceTensorLoader) and loader.augment is not None
    assert next(iter(loader))[0].shape == (32, 3, 32, 32)


def test_cifar_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        CIFAR10DataModule(data_dir="x", val_fraction=1.0)
    with pytest.raises(ValueError, match="subset"):
        CIFAR10DataModule(data_dir="x", subset=1)


def test_lightning_uses_device_resident_batches_without_copying() -> None:
    import lightning.pytorch as pl

    from optuna_nas.training import ChildModule

    yielded: list[int] = []
    received: list[int] = []

    class Recording(DeviceTensorLoader):
        def __iter__(self) -> Any:
            for x, y in super().__iter__():
                yielded.append(id(x))
                yield x, y

    class Module(ChildModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            received.append(id(batch[0]))
            return super().training_step(batch, batch_idx)

    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    module = Module(
        network=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), num_classes=10
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        module,
        train_dataloaders=Recording(x, y, batch_size=16, shuffle=True),
        val_dataloaders=DeviceTensorLoader(x, y, batch_size=32),  # ChildModule validates
    )
    # The very tensors the loader produced reach training_step: no per-step copy or move.
    assert received == yielded and len(received) == 4


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
