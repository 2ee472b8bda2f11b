"""The train291 set (T91 + BSDS200) and random super-resolution training crops made from it.

:func:`load_train291` reads the 291 training images (``ROOT/sr/train291/{BSD200,T91}/*.png``) once per
process (:func:`load_photos` does the same for any folder of photos). :class:`SRCropDataset` serves
random ``crop_size``-square HR patches with their MATLAB-bicubic LR patches, in the tensor convention
of :mod:`reference_models.srgan` (SRGAN paper: LR in ``[0, 1]``, HR in ``[-1, 1]``).
"""

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ganbench.data.images import IMAGE_EXTENSIONS, mod_crop, read_image
from ganbench.errors import DataNotFoundError, EmptyDatasetError
from ganbench.imresize import imresize
from ganbench.progress import progress_bar
from ganbench.settings import data_root

__all__ = ["TRAIN291_DIR", "train291_dir", "load_photos", "load_train291", "SRCropDataset"]

TRAIN291_DIR = "sr/train291"


def train291_dir(root: str | os.PathLike | None = None) -> Path:
    """``ROOT/sr/train291`` with ``ROOT`` = ``root`` or ``$GANBENCH_DATA``."""
    return data_root(root) / TRAIN291_DIR


@lru_cache(maxsize=4)
def _read_photos(folder: str) -> tuple[tuple[str, torch.Tensor], ...]:
    """``(name, uint8 (C, H, W))`` of the images in ``folder`` and its sub-folders, read once per process."""
    base = Path(folder)
    if not base.is_dir():
        raise DataNotFoundError(f"image folder {folder!r} does not exist")
    folders = [base, *sorted(p for p in base.iterdir() if p.is_dir())]
    files = [
        f
        for d in folders
        for f in sorted(d.iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
    ]
    images = []
    for path in progress_bar(files, desc=f"reading {base.name}", unit="img"):
        images.append((path.relative_to(base).with_suffix("").as_posix(), read_image(path)))
    return tuple(images)


def load_photos(folder: str | os.PathLike, min_size: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Return ``[(name, image uint8 (C, H, W))]`` of the images in ``folder`` and its direct sub-folders.

    ``name`` is the path relative to ``folder`` without extension (``"T91/t1"``), in sorted order,
    top-level files first. Images whose shorter side is below ``min_size`` are left out. Images are
    read once per process and shared by every caller: do not modify them in place.
    """
    folder = Path(folder).resolve()
    images = [(name, img) for name, img in _read_photos(str(folder)) if min(img.shape[-2:]) >= min_size]
    if not images:
        raise EmptyDatasetError(
            f"no image in {str(folder)!r} (or its sub-folders) is at least {min_size} pixels on each side"
        )
    return images


def load_train291(root: str | os.PathLike | None = None, min_size: int = 0) -> list[tuple[str, torch.Tensor]]:
    """train291's ``[(name, image uint8 (3, H, W))]`` (``"BSD200/2092"``, ..., ``"T91/t1"``, ...); see
    :func:`load_photos`. ``root`` is the data root (default ``$GANBENCH_DATA``)."""
    return load_photos(train291_dir(root), min_size)


class SRCropDataset(Dataset):
    """Random HR crops of train291 with their bicubic LR crops: ``{"lr", "hr"}`` float32 tensors.

    Each image is cropped to a multiple of ``scale`` (``mod_crop``) and down-scaled once, at
    construction, with MATLAB's bicubic ``imresize(hr, 1/scale)`` (``uint8`` result, as the LR test
    vectors); item ``i`` is an aligned random patch of image ``i % n_images``: ``hr`` ``(3, crop_size,
    crop_size)`` in ``[-1, 1]`` and ``lr`` ``(3, crop_size/scale, crop_size/scale)`` in ``[0, 1]``.
    Images smaller than ``crop_size`` are skipped (one of train291's 291 for 96). The crop position is
    drawn from ``numpy.random.default_rng([seed, epoch, i])``: call :meth:`set_epoch` each epoch for
    new crops; the same ``(seed, epoch, i)`` always gives the same patch.

    Args:
        root: data root (default ``$GANBENCH_DATA``).
        crop_size: HR patch side, a multiple of ``scale`` (96 as in SRGAN).
        scale: down-scaling factor (4).
        repeats: length of one epoch in passes over the images.
        seed: seed of the crop positions.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        crop_size: int = 96,
        scale: int = 4,
        repeats: int = 1,
        seed: int = 0,
    ):
        if scale < 1 or crop_size < scale or crop_size % scale:
            raise ValueError(f"crop_size must be a positive multiple of scale={scale}, got {crop_size}")
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        self.crop_size, self.scale, self.repeats, self.seed = crop_size, scale, repeats, seed
        self.epoch = 0
        pairs = []
        for name, image in progress_bar(load_train291(root, min_size=crop_size), desc="bicubic LR"):
            hr = mod_crop(image, scale)
            pairs.append((name, hr, imresize(hr, 1.0 / scale)))
        self.names = [name for name, _, _ in pairs]
        self.hr = [hr for _, hr, _ in pairs]
        self.lr = [lr for _, _, lr in pairs]

    def set_epoch(self, epoch: int) -> None:
        """Use the crop positions of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.hr) * self.repeats

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crops")
        k = index % len(self.hr)
        lr_image = self.lr[k]
        patch = self.crop_size // self.scale
        rng = np.random.default_rng([self.seed, self.epoch, index])
        top = int(rng.integers(lr_image.shape[-2] - patch + 1))
        left = int(rng.integers(lr_image.shape[-1] - patch + 1))
        s = self.scale
        lr = lr_image[:, top : top + patch, left : left + patch]
        hr = self.hr[k][:, top * s : (top + patch) * s, left * s : (left + patch) * s]
        return {"lr": lr.float() / 255.0, "hr": hr.float() / 127.5 - 1.0}
