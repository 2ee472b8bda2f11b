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
"label": int64}``. Register more with :func:`register_dataset`.
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
