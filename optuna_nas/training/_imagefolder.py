"""``ImageFolderDataModule``: a class-per-folder image dataset of your own, device-resident."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from optuna_nas._validation import check_int
from optuna_nas.data import RandomCropFlip
from optuna_nas.data import black_fill
from optuna_nas.data import stratified_split
from optuna_nas.training._datamodules import _ImageDataModule
from optuna_nas.training._datamodules import _normalize
from optuna_nas.training._datamodules import check_split_fractions


#: PIL modes read as one channel by ``color_mode="auto"``.
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F", "P;L")
_COLOR_MODES = ("auto", "rgb", "grayscale")


def _image_extensions() -> tuple[str, ...]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


class ImageFolderDataModule(_ImageDataModule):
    """Your own images in a class-per-folder layout (``root/<class>/<image>``), for NAS.

    The layout of :class:`torchvision.datasets.ImageFolder`: every sub-folder of ``root`` is a
    class (sorted by name; label ``i`` is ``classes[i]``) holding image files with one of
    torchvision's image extensions (``.png``, ``.jpg``, ...; other files are ignored). The
    images are read with PIL, converted to RGB or grayscale, resized to ``image_size`` x
    ``image_size`` (bilinear), split, stratified by class and deterministically for ``seed``,
    into train/val (and optionally test) parts and normalized per channel with the training
    part's mean and standard deviation. Like :class:`EmbeddedDataModule` the tensors are
    device-resident by default: the whole dataset lives on the training device and batches
    are sliced there, so keep ``image_size`` small for large folders (N x C x S x S floats).

    The folder is listed (and its color mode detected) in the constructor, which therefore
    knows :attr:`num_classes` and :attr:`in_channels` before any image is read;
    ``prepare_data`` does nothing and ``setup`` reads the images (once).

    Args:
        root: The folder of class folders.
        image_size: Side of the square images the network sees.
        color_mode: ``"rgb"`` (3 channels), ``"grayscale"`` (1 channel) or ``"auto"``:
            grayscale when the first image of every class is a one-channel image (PIL modes
            ``L``, ``1``, ``I``, ...), RGB otherwise.
        batch_size: Training batch size.
        val_fraction: Fraction of the (sub)set used for validation.
        test_fraction: Fraction held out as a test split (none by default).
        subset: Use only this many images in total (drawn stratified).
        augment: Random crop (padding ``image_size // 8``) and horizontal flip in training.
        seed: Seed of the split and of the shuffling.
        device_resident: Slice batches from one tensor on the training device (default), or
            use a ``DataLoader`` when ``False``.
        num_workers: DataLoader workers when ``device_resident=False``.
        eval_batch_size: Batch size of validation and test (defaults to ``2 * batch_size``).

    Raises:
        ValueError: ``root`` is not a folder, holds fewer than two class folders or a class
            folder without images, or an argument is out of range; ``setup`` raises it for
            files that PIL cannot read, naming them.

    Attributes:
        classes: The class names (folder names), in label order.
        num_classes: Number of classes.
        in_channels: 3 (RGB) or 1 (grayscale).
        image_size: Side of the images the network sees.

    Example:
        .. code-block:: python

            import os

            from PIL import Image
            from optuna_nas.training import ImageFolderDataModule

            # my_images/<class>/<image>: here two classes of plain 16x16 pictures.
            for name, colour in (("cats", (200, 80, 40)), ("dogs", (40, 80, 200))):
                os.makedirs(f"my_images/{name}", exist_ok=True)
                for i in range(10):
                    Image.new("RGB", (16, 16), colour).save(f"my_images/{name}/{i}.png")

            dm = ImageFolderDataModule(root="my_images", image_size=32)
            dm.setup("fit")
            print(dm.classes, dm.in_channels)  # ['cats', 'dogs'] 3
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        image_size: int = 32,
        color_mode: str = "auto",
        batch_size: int = 64,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        subset: int | None = None,
        augment: bool = False,
        seed: int = 0,
        device_resident: bool = True,
        num_workers: int = 0,
        eval_batch_size: int | None = None,
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        if eval_batch_size is None:
            eval_batch_size = 2 * batch_size
        super().__init__(batch_size, eval_batch_size, num_workers, device_resident, augment, seed)
        check_int("image_size", image_size, minimum=4)
        check_split_fractions(val_fraction, test_fraction)
        if color_mode not in _COLOR_MODES:
            raise ValueError(
                f"color_mode must be one of {list(_COLOR_MODES)}; got {color_mode!r}."
            )
        self.root = os.fspath(root)
        self.classes, self.files = _list_folder(self.root)
        if subset is not None:
            # At least two images per class, so that every split can be stratified.
            check_int("subset", subset, minimum=2 * len(self.classes))
            if subset > len(self.files):
                raise ValueError(
                    f"subset={subset} exceeds the {len(self.files)} images in {self.root!r}."
                )
        if color_mode == "auto":
            color_mode = _detect_color_mode(self.files, len(self.classes))
        self.color_mode = color_mode
        self.num_classes = len(self.classes)
        self.in_channels = 1 if color_mode == "grayscale" else 3
        self.image_size = int(image_size)
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.subset = subset
        self.mean: tuple[float, ...] = (0.0,) * self.in_channels
        self.std: tuple[float, ...] = (1.0,) * self.in_channels

    def batch_augmentation(self) -> RandomCropFlip | None:
        if not self.augment:
            return None
        padding = max(1, self.image_size // 8)
        return RandomCropFlip(padding=padding, hflip=True, fill=black_fill(self.mean, self.std))

    def prepare_data(self) -> None:
        """Nothing to download: the images are read by :meth:`setup`."""

    def setup(self, stage: str | None = None) -> None:
        if self._tensors:
            return  # idempotent: Lightning calls setup() at every fit (every trial)
        labels = np.asarray([label for _, label in self.files], dtype=np.int64)
        fractions = (
            (self.val_fraction, self.test_fraction) if self.test_fraction else (self.val_fraction,)
        )
        parts = stratified_split(labels, fractions, seed=self.seed, subset=self.subset)
        used = np.sort(np.concatenate(parts))
        images = self._read(used)  # (len(used), C, S, S) in [0, 1]
        position = {int(i): k for k, i in enumerate(used)}
        y = torch.from_numpy(labels)
        train = images[torch.as_tensor([position[int(i)] for i in parts[0]], dtype=torch.long)]
        self.mean = tuple(float(v) for v in train.mean(dim=(0, 2, 3)))
        self.std = tuple(max(float(v), 1e-6) for v in train.std(dim=(0, 2, 3)))
        for name, idx in zip(("train", "val", "test"), parts):
            self.indices[name] = idx
            rows = torch.as_tensor([position[int(i)] for i in idx], dtype=torch.long)
            x = _normalize(images[rows], self.mean, self.std).contiguous()
            self._tensors[name] = (x, y[torch.from_numpy(idx)])

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        from PIL import Image

        mode = "L" if self.in_channels == 1 else "RGB"
        side = self.image_size
        out = torch.empty(len(indices), self.in_channels, side, side)
        bad: list[str] = []
        for k, index in enumerate(indices):
            path = self.files[int(index)][0]
            try:
                with Image.open(path) as opened:
                    image = opened.convert(mode).resize((side, side), Image.Resampling.BILINEAR)
                    array = np.asarray(image, dtype=np.float32) / 255.0
            except (OSError, ValueError, SyntaxError):  # PIL's errors for unreadable files
                bad.append(os.path.relpath(path, self.root))
                continue
            if array.ndim == 2:
                array = array[:, :, None]
            out[k] = torch.from_numpy(array).permute(2, 0, 1)
        if bad:
            shown = ", ".join(repr(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
            raise ValueError(f"Cannot read {len(bad)} image file(s) in {self.root!r}: {shown}.")
        return out

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataModule(root={self.root!r}, classes={len(self.classes)}, "
            f"images={len(self.files)}, image_size={self.image_size}, "
            f"color_mode={self.color_mode!r}, subset={self.subset}, "
            f"batch_size={self.batch_size}, seed={self.seed})"
        )


def _list_folder(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The class names and ``(path, label)`` of every image file, checked."""
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise ValueError(f"Image folder {root!r} {what}.")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(
            f"Image folder {root!r} has {len(classes)} class folder(s) {classes}; a "
            "classification task needs at least 2 (one sub-folder of images per class)."
        )
    extensions = _image_extensions()
    files: list[tuple[str, int]] = []
    empty: list[str] = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        found = sorted(
            os.path.join(dirpath, f)
            for dirpath, _, names in os.walk(folder)
            for f in names
            if f.lower().endswith(extensions)
        )
        if not found:
            empty.append(name)
        files.extend((path, label) for path in found)
    if empty:
        raise ValueError(
            f"Class folder(s) {empty} of {root!r} hold no image file (extensions "
            f"{', '.join(extensions)})."
        )
    return classes, files


def _detect_color_mode(files: list[tuple[str, int]], num_classes: int) -> str:
    from PIL import Image

    firsts: dict[int, str] = {}
    for path, label in files:
        firsts.setdefault(label, path)
        if len(firsts) == num_classes:
            break
    for path in firsts.values():
        try:
            with Image.open(path) as image:
                mode: Any = image.mode
        except (OSError, ValueError, SyntaxError):
            continue  # setup names the unreadable files
        if mode not in _GRAY_MODES:
            return "rgb"
    return "grayscale"
