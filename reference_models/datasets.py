"""Training data by name, and the epoch sampler the engine draws its batches with.

A training data set is map-style, like a ``torch.utils.data.Dataset``: ``len(dataset)`` and
``dataset[i]`` -> a dict of tensors (one sample); batches are stacked with ``default_collate``. If it
has ``set_epoch(epoch)`` (e.g. :class:`ganbench.data.sr_crops.SRCropDataset`), the engine calls it at
every epoch, so random crops change per epoch yet stay reproducible on resume.

Registered here (``[data] name``; the other keys of ``[data]`` but ``batch_size`` go to the builder):

* ``mnist``, ``fashion``: :func:`ganbench.data.idx.load_mnist` (options ``split`` = ``"train"`` |
  ``"test"``, ``root`` = data root, default ``$GANBENCH_DATA``);
* ``embedded``: the 2,000-image MNIST sample shipped in the package (``split = "test"``; tests,
  offline demos).

Their items are ``{"image": float32 (1, 28, 28) in [-1, 1] (x / 127.5 - 1, as in seeds 000 and 001),
"label": int64}``. The image-to-image data sets (float32 ``(3, H, W)`` images):

* ``sr-crops``: :class:`ganbench.data.sr_crops.SRCropDataset`, random train291 crops ``{"lr" in [0, 1],
  "hr" in [-1, 1]}`` (SRResNet, SRGAN);
* ``motion-blur``: :class:`ganbench.data.blur.MotionBlurDataset`, train291 crops with synthetic camera
  shake ``{"blurred", "sharp"}`` in [-1, 1] (DeblurGAN);
* ``mnist-mnistm``: :class:`ganbench.data.mnistm.MnistMnistMDataset`, unpaired MNIST (``"a"``, grey
  repeated to RGB) and MNIST-M (``"b"``) in [-1, 1], reflect-padded at the bottom/right from 28 to
  ``pad_to`` pixels (the padding :class:`ganbench.generators.Generator` applies at evaluation), plus
  ``"label_a"``, ``"label_b"`` (CycleGAN);
* ``image-folders``: :class:`ganbench.data.images.UnpairedImageDataset` over ``FOLDER/trainA`` and
  ``FOLDER/trainB`` (or ``test*``), resized to ``size`` (PIL bilinear), randomly flipped left-right
  and scaled to [-1, 1] as seed 002's data loader does ``{"a", "b"}`` (CycleGAN on apple2orange).

Register more with :func:`register_dataset`.
"""

import inspect
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import default_collate

from ganbench.errors import ConfigError

__all__ = ["register_dataset", "list_datasets", "build_dataset", "LabeledImages", "EpochSampler", "collate"]

_DATASETS: dict[str, Callable] = {}


def register_dataset(name: str):
    """Decorator registering ``builder(**options) -> dataset`` as data set ``name``."""

    def decorate(builder: Callable) -> Callable:
        _DATASETS[name] = builder
        return builder

    return decorate


def list_datasets() -> list[str]:
    """Names of the registered data sets."""
    return sorted(_DATASETS)


def build_dataset(data_config: dict):
    """The data set a ``[data]`` table names, built with its options."""
    options = {k: v for k, v in data_config.items() if k not in ("name", "batch_size")}
    name = data_config["name"]
    if name not in _DATASETS:
        raise ConfigError(f"unknown data set {name!r} (known: {', '.join(list_datasets())})")
    builder = _DATASETS[name]
    try:
        inspect.signature(builder).bind(**options)
    except TypeError:
        accepted = ", ".join(inspect.signature(builder).parameters) or "none"
        raise ConfigError(
            f"data set {name!r} does not take option(s) {sorted(options)} (options: {accepted})"
        ) from None
    return builder(**options)


class LabeledImages:
    """Grey images with class labels: items ``{"image": (1, H, W) float in [-1, 1], "label": int64}``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(
                f"expected uint8 (N, H, W) images and (N,) labels, got {images.shape}, {labels.shape}"
            )
        self.images, self.labels = images, labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[index].unsqueeze(0).float() / 127.5 - 1.0
        return {"image": image, "label": self.labels[index]}


def _mnist_split(name: str, split: str, root: str) -> LabeledImages:
    from ganbench.data.idx import load_mnist

    if split not in ("train", "test"):
        raise ConfigError(f"data.split must be 'train' or 'test', got {split!r}")
    return LabeledImages(*load_mnist(name, split, root or None))


@register_dataset("mnist")
def mnist(split: str = "train", root: str = "") -> LabeledImages:
    """MNIST (60,000 train / 10,000 test images)."""
    return _mnist_split("mnist", split, root)


@register_dataset("fashion")
def fashion(split: str = "train", root: str = "") -> LabeledImages:
    """Fashion-MNIST (60,000 train / 10,000 test images)."""
    return _mnist_split("fashion", split, root)


@register_dataset("embedded")
def embedded(split: str = "test") -> LabeledImages:
    """The MNIST sample shipped in the package (the first 2,000 MNIST test images)."""
    from ganbench.data.sample import load_embedded_sample

    if split != "test":
        raise ConfigError(
            f"the embedded sample holds MNIST test images: data.split must be 'test', got {split!r}"
        )
    return LabeledImages(*load_embedded_sample())


@register_dataset("sr-crops")
def sr_crops(root: str = "", crop_size: int = 96, scale: int = 4, repeats: int = 1, seed: int = 0):
    """Random HR crops of train291 and their MATLAB-bicubic LR crops (SRGAN: 96 HR pixels, x4)."""
    from ganbench.data.sr_crops import SRCropDataset

    return SRCropDataset(root or None, crop_size=crop_size, scale=scale, repeats=repeats, seed=seed)


@register_dataset("motion-blur")
def motion_blur(
    root: str = "",
    crop_size: int = 256,
    repeats: int = 1,
    seed: int = 0,
    noise_sigma: float = 0.01,
    min_length: float = 5.0,
    max_length: float = 30.0,
):
    """Random sharp train291 crops with synthetic camera-shake blur (DeblurGAN: 256 pixels)."""
    from ganbench.data.blur import MotionBlurDataset

    return MotionBlurDataset(
        root or None,
        crop_size=crop_size,
        repeats=repeats,
        seed=seed,
        noise_sigma=noise_sigma,
        min_length=min_length,
        max_length=max_length,
    )


def _pad_bottom_right(image: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect-pad a float ``(C, H, W)`` image at the bottom/right to ``size`` pixels a side."""
    pad_h, pad_w = size - image.shape[-2], size - image.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ConfigError(f"data.pad_to = {size} is smaller than the {tuple(image.shape[-2:])} images")
    return torch.nn.functional.pad(image[None], (0, pad_w, 0, pad_h), mode="reflect")[0]


@register_dataset("mnist-mnistm")
def mnist_mnistm(split: str = "train", seed: int = 0, root: str = "", pad_to: int = 32):
    """Unpaired MNIST (a) / MNIST-M (b), padded from 28 to ``pad_to`` pixels, in [-1, 1]."""
    from ganbench.data.mnistm import MnistMnistMDataset

    if split not in ("train", "test"):
        raise ConfigError(f"data.split must be 'train' or 'test', got {split!r}")

    def transform(image: torch.Tensor) -> torch.Tensor:
        return _pad_bottom_right(image.float(), pad_to) / 127.5 - 1.0

    return MnistMnistMDataset(split, seed, root or None, transform=transform, random_b=True)


@register_dataset("image-folders")
def image_folders(folder: str = "", split: str = "train", size: int = 128, flip: bool = True):
    """Unpaired images of ``folder/{split}A`` and ``folder/{split}B`` (default: apple2orange under the
    data root), resized to ``size`` x ``size``, flipped left-right with probability 1/2 when ``flip``."""
    from pathlib import Path

    from PIL import Image

    from ganbench.data.images import UnpairedImageDataset
    from ganbench.settings import data_root

    if split not in ("train", "test"):
        raise ConfigError(f"data.split must be 'train' or 'test', got {split!r}")
    root = Path(folder).expanduser() if folder else data_root() / "cyclegan" / "apple2orange"

    def transform(image: torch.Tensor) -> torch.Tensor:
        rgb = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
        resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((size, size), Image.BILINEAR)
        out = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 127.5 - 1.0
        if flip and float(torch.rand(())) < 0.5:
            out = out.flip(-1)
        return out

    return UnpairedImageDataset(root / f"{split}A", root / f"{split}B", transform, random_b=True)


def collate(dataset, indices: list[int]) -> dict[str, torch.Tensor]:
    """The batch of ``dataset`` at ``indices``."""
    return default_collate([dataset[i] for i in indices])


class EpochSampler:
    """Batches of indices of a data set of ``size`` samples, reshuffled every epoch, incomplete ones dropped.

    Epoch ``e``'s order is ``numpy.random.default_rng([seed, e]).permutation(size)``, so the sampler's
    whole state is ``(epoch, position)`` (:meth:`state_dict`).
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        if size < batch_size:
            raise ConfigError(f"the data set has {size} samples, fewer than data.batch_size = {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        return np.random.default_rng([self.seed, epoch]).permutation(self.size).tolist()

    def next_indices(self) -> tuple[list[int], bool]:
        """The next batch's indices, and whether a new epoch began with it."""
        new_epoch = False
        if self.position + self.batch_size > self.size:
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
            new_epoch = True
        indices = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return indices, new_epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
