"""MNIST-M (Ganin & Lempitsky, ICML 2015) and the unpaired MNIST <-> MNIST-M translation task.

MNIST-M blends each MNIST digit over a colour patch: a ``28 x 28`` patch ``p`` is cropped at a random
position of a randomly chosen photo, and the image is ``|p - d|`` per channel, ``d`` the grey digit
(so strokes invert the background's colours). Ganin & Lempitsky crop BSDS500 photos; ganbench crops
train291 (T91 + the 200 BSDS training photos), the photos under ``ROOT/sr/train291``. The digit is
used with its grey levels as in the paper's formula (no binarisation). Everything is drawn from
``numpy.random.default_rng(seed)``, so a seed always gives the same set.

:func:`load_mnistm` builds the train/test sets from MNIST's train/test splits once and caches them in
``cache_dir()/mnistm``; :class:`MnistMnistMDataset` pairs MNIST (domain A) with MNIST-M (domain B) for
CycleGAN, in the item format of :class:`ganbench.data.images.UnpairedImageDataset`.
"""

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ganbench.checks import as_tensor
from ganbench.data.idx import SPLITS, load_mnist
from ganbench.data.sr_crops import load_photos, train291_dir
from ganbench.errors import ImageRangeError, ImageShapeError
from ganbench.files import atomic_path
from ganbench.settings import cache_dir

__all__ = ["make_mnistm", "load_mnistm", "MnistMnistMDataset"]

# Bump when the construction changes, so that stale caches are not reused.
MNISTM_VERSION = 1


def make_mnistm(
    images, seed: int | Sequence[int], backgrounds_root: str | os.PathLike | None = None
) -> torch.Tensor:
    """Blend grey digits over random colour patches: ``uint8 (N, H, W)`` -> ``uint8 (N, 3, H, W)``.

    Args:
        images: ``uint8`` digits ``(N, H, W)`` (tensor or array), e.g. MNIST's ``(N, 28, 28)``.
        seed: seed (or seed sequence) of ``numpy.random.default_rng`` choosing photo and position.
        backgrounds_root: folder of colour photos (and its sub-folders) to crop patches from; default
            train291 under ``$GANBENCH_DATA``. Photos smaller than the digits are not used.

    Returns:
        ``uint8 (N, 3, H, W)`` with ``out[n, c] = |patch[n, c] - images[n]|``.
    """
    digits = as_tensor(images, "images")
    if digits.dtype != torch.uint8:
        raise ImageRangeError(f"images: expected uint8 digits in 0..255, got {digits.dtype}")
    if digits.ndim != 3 or digits.shape[0] == 0:
        raise ImageShapeError(
            f"images: expected a non-empty (N, H, W) batch of digits, got {tuple(digits.shape)}"
        )
    n, h, w = digits.shape
    folder = backgrounds_root if backgrounds_root is not None else train291_dir()
    photos = [img.expand(3, -1, -1) for _, img in load_photos(folder, min_size=max(h, w))]
    heights = np.array([p.shape[1] for p in photos])
    widths = np.array([p.shape[2] for p in photos])
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)
    tops = rng.integers(0, heights[which] - h + 1)
    lefts = rng.integers(0, widths[which] - w + 1)
    patches = torch.stack(
        [photos[k][:, y : y + h, x : x + w] for k, y, x in zip(which, tops, lefts, strict=True)]
    )
    return (patches.to(torch.int16) - digits[:, None].to(torch.int16)).abs_().to(torch.uint8)


def _cache_path(split: str, seed: int) -> Path:
    """Cache file of one MNIST-M split."""
    return cache_dir() / "mnistm" / f"mnistm-v{MNISTM_VERSION}-{split}-seed{seed}.npz"


def _read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached ``(images, labels)``, or None when the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return torch.from_numpy(archive["images"]), torch.from_numpy(archive["labels"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Write the split atomically (temporary file, then ``os.replace``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images.numpy(), labels=labels.numpy())


def load_mnistm(
    split: str = "train", seed: int = 0, root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-M made from MNIST's ``split``: ``(uint8 (N, 3, 28, 28), int64 labels (N,))``.

    Image ``i`` is MNIST ``split`` image ``i`` blended by :func:`make_mnistm` with seed
    ``(seed, split_index)`` (train 0, test 1), so train and test use independent draws and image
    ``i`` is the paired counterpart of MNIST image ``i``. Built once (60k images: a few seconds) and
    cached in ``cache_dir()/mnistm``; ``root`` is the data root (default ``$GANBENCH_DATA``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = _cache_path(split, seed)
    cached = _read_cache(path)
    if cached is not None:
        return cached
    digits, labels = load_mnist("mnist", split, root)
    images = make_mnistm(digits, (seed, SPLITS.index(split)), train291_dir(root))
    _write_cache(path, images, labels)
    return images, labels


class MnistMnistMDataset(Dataset):
    """Unpaired translation set: MNIST (domain A) and MNIST-M (domain B), ``28 x 28`` RGB ``uint8``.

    Item ``i`` is ``{"a", "b", "label_a", "label_b"}``: ``a`` MNIST image ``i`` repeated to ``(3, 28,
    28)``, ``b`` an MNIST-M image; ``random_b=True`` (training) draws ``b`` uniformly at random (torch's
    RNG), ``random_b=False`` gives ``b`` = MNIST-M image ``i``, the same digit blended: the paired
    ground truth for scoring the B -> A translation. ``transform`` is applied to ``a`` and ``b`` (e.g.
    resize to 32 x 32 for the U-Net, then scale to ``[-1, 1]``).
    """

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        root: str | os.PathLike | None = None,
        transform=None,
        random_b: bool = True,
    ):
        mnist, self.labels_a = load_mnist("mnist", split, root)
        self.a = mnist[:, None].expand(-1, 3, -1, -1)
        self.b, self.labels_b = load_mnistm(split, seed, root)
        self.transform = transform
        self.random_b = random_b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> dict:
        j = int(torch.randint(len(self.b), ())) if self.random_b else index
        a, b = self.a[index], self.b[j]
        if self.transform is not None:
            a, b = self.transform(a), self.transform(b)
        return {"a": a, "b": b, "label_a": int(self.labels_a[index]), "label_b": int(self.labels_b[j])}
