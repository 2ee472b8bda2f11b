"""Image folders and ``.npz`` image files: listing, decoding, and torch Datasets built on them.

Images are kept as ``uint8`` tensors ``(C, H, W)`` with ``C = 1`` (grayscale) or ``C = 3`` (RGB);
other PIL modes are converted (palette/CMYK/RGBA -> RGB, alpha dropped; ``1``/``LA`` -> grayscale).
Folders are read non-recursively, files with the extensions in :data:`IMAGE_EXTENSIONS` (any case) in
sorted name order.
"""

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ganbench.errors import (
    CorruptFileError,
    DataNotFoundError,
    EmptyDatasetError,
    ImageRangeError,
    ImageShapeError,
    ImageSizeMismatchError,
)
from ganbench.imresize import imresize

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "read_image",
    "load_images",
    "mod_crop",
    "ImageFolder",
    "PairedSRDataset",
    "UnpairedImageDataset",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
NPZ_KEYS = ("images", "x")
_GRAY_MODES = {"1": "L", "L": "L", "LA": "L"}
_HIGH_DEPTH_MODES = ("I", "F")  # 16/32-bit integer and float images ("I;16", "I;16B", ... included)
# What PIL raises on unreadable, truncated or malformed files.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Return the image files of ``folder`` (non-recursive), sorted by name.

    Raises :class:`DataNotFoundError` if the folder does not exist and :class:`EmptyDatasetError` if
    it holds no image files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder {str(folder)!r} does not exist")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise EmptyDatasetError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {str(folder)!r}"
        )
    return files


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode one image file into a ``uint8`` tensor ``(C, H, W)``, ``C`` = 1 or 3.

    Raises :class:`DataNotFoundError` for a missing file, :class:`CorruptFileError` (naming the file)
    when it cannot be decoded, and :class:`ImageRangeError` for 16-bit or float images.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            img.verify()  # chunk checksums and end marker: catches files cut after the pixel data
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            high_depth = mode.startswith(_HIGH_DEPTH_MODES)
            array = None if high_depth else np.asarray(img.convert(_GRAY_MODES.get(mode, "RGB")))
    except _DECODE_ERRORS as exc:
        raise CorruptFileError(f"cannot decode image file {str(path)!r}: {exc}") from None
    if high_depth:
        raise ImageRangeError(f"{str(path)!r}: {mode} images are not supported, only 8-bit gray/RGB")
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def _stack_same_size(images: list[torch.Tensor], files: list[Path]) -> torch.Tensor:
    """Stack ``(C, H, W)`` images into ``(N, C, H, W)``; grayscale joins RGB as three equal channels."""
    channels = max(img.shape[0] for img in images)
    size = tuple(images[0].shape[1:])
    for img, path in zip(images, files):
        if tuple(img.shape[1:]) != size:
            raise ImageSizeMismatchError(
                f"{str(path)!r} is {img.shape[1]}x{img.shape[2]} but {str(files[0])!r} is "
                f"{size[0]}x{size[1]}; load_images needs images of one size"
            )
    return torch.stack([img.expand(channels, -1, -1) for img in images])


def _load_npz(path: Path) -> torch.Tensor:
    """Read uint8 images ``(N, H, W[, C])`` from an ``.npz`` file as ``(N, C, H, W)``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys), None)
            array = archive[key] if key is not None else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CorruptFileError(f"cannot read npz file {str(path)!r}: {exc}") from None
    if array is None:
        raise EmptyDatasetError(
            f"{str(path)!r} holds arrays {keys}; expected a single array or one named "
            f"{' or '.join(repr(k) for k in NPZ_KEYS)}"
        )
    if array.dtype != np.uint8:
        raise ImageRangeError(f"{str(path)!r}[{key!r}]: expected uint8 images, got {array.dtype}")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ImageShapeError(
            f"{str(path)!r}[{key!r}]: expected images (N, H, W) or (N, H, W, C) with C in 1 or 3, "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise EmptyDatasetError(f"{str(path)!r}[{key!r}] holds no images (shape {array.shape})")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def load_images(path: str | os.PathLike) -> torch.Tensor:
    """Load images as one ``uint8`` tensor ``(N, C, H, W)``.

    ``path`` is a folder of same-size images (grayscale images are repeated to RGB when the folder
    mixes both), a single image file, or an ``.npz`` file holding ``uint8`` images ``(N, H, W)`` or
    ``(N, H, W, C)`` as its only array or under the key ``'images'`` or ``'x'``.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"{str(path)!r} does not exist")
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz(path)
    files = [path] if path.is_file() else list_images(path)
    return _stack_same_size([read_image(f) for f in files], files)


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of ``(..., H, W)`` so that H and W are multiples of ``scale`` (MATLAB
    ``modcrop``)."""
    h, w = image.shape[-2:]
    if h < scale or w < scale:
        raise ImageShapeError(f"image of {h}x{w} pixels is smaller than the scale {scale}")
    return image[..., : h - h % scale, : w - w % scale]


class ImageFolder(Dataset):
    """The images of one folder as ``uint8`` ``(C, H, W)`` tensors, optionally transformed."""

    def __init__(self, root: str | os.PathLike, transform=None):
        self.root = Path(root)
        self.files = list_images(self.root)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = read_image(self.files[index])
        return self.transform(image) if self.transform is not None else image


class PairedSRDataset(Dataset):
    """Super-resolution pairs made from a folder of high-resolution images.

    Item ``i`` is ``{"lr", "hr", "name"}``: ``hr`` is image ``i`` cropped to a multiple of ``scale``
    (:func:`mod_crop`), ``lr = imresize(hr, 1 / scale)`` (MATLAB bicubic, ``uint8``). With
    ``crop_size`` (a multiple of ``scale``) a random ``crop_size``-square HR patch and the matching
    LR patch are returned instead (LR is always made from the whole image, as at test time).
    """

    def __init__(self, hr_root: str | os.PathLike, scale: int, crop_size: int | None = None):
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        if crop_size is not None and (crop_size < scale or crop_size % scale):
            raise ValueError(f"crop_size must be a positive multiple of scale={scale}, got {crop_size}")
        self.scale = int(scale)
        self.crop_size = crop_size
        self.images = ImageFolder(hr_root)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        path = self.images.files[index]
        hr = mod_crop(self.images[index], self.scale)
        lr = imresize(hr, 1.0 / self.scale)
        if self.crop_size is not None:
            hr, lr = self._random_crop(hr, lr, path)
        return {"lr": lr, "hr": hr, "name": path.stem}

    def _random_crop(self, hr: torch.Tensor, lr: torch.Tensor, path: Path):
        """Return aligned random patches: ``crop_size`` in HR, ``crop_size / scale`` in LR."""
        patch = self.crop_size // self.scale
        lr_h, lr_w = lr.shape[-2:]
        if lr_h < patch or lr_w < patch:
            raise ImageShapeError(
                f"{str(path)!r}: {hr.shape[-2]}x{hr.shape[-1]} is smaller than "
                f"crop_size={self.crop_size}"
            )
        top = int(torch.randint(lr_h - patch + 1, ()))
        left = int(torch.randint(lr_w - patch + 1, ()))
        s = self.scale
        lr = lr[..., top : top + patch, left : left + patch]
        hr = hr[..., top * s : (top + patch) * s, left * s : (left + patch) * s]
        return hr, lr


class UnpairedImageDataset(Dataset):
    """Two image folders A and B for unpaired translation (CycleGAN style).

    ``len`` is the larger folder's size; item ``i`` is ``{"a": A[i % len(A)], "b": B[j]}`` with
    ``j = i % len(B)``, or a uniformly random ``j`` when ``random_b`` is set (so that A/B pairings
    change between epochs). ``transform`` is applied to each ``uint8`` ``(C, H, W)`` image.
    """

    def __init__(self, root_a: str | os.PathLike, root_b: str | os.PathLike, transform=None,
                 random_b: bool = False):
        self.a = ImageFolder(root_a, transform)
        self.b = ImageFolder(root_b, transform)
        self.random_b = random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> dict:
        j = int(torch.randint(len(self.b), ())) if self.random_b else index % len(self.b)
        return {"a": self.a[index % len(self.a)], "b": self.b[j]}
