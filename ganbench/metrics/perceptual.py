"""VGG perceptual distance: the mean squared difference of VGG feature maps (a "content" / "VGG" loss).

``distance = mean over (C, H, W) of (s * phi(preds) - s * phi(target))**2`` per image, where ``phi`` is a
torchvision VGG cut after a layer and the images, scaled to [0, 1] by ``data_range``, are normalised
with the ImageNet mean and std (grayscale is repeated to 3 channels). Networks (any
``vgg16_<layer>`` / ``vgg19_<layer>``, see :mod:`ganbench.features.vgg`) used in the literature:

* ``vgg19_relu5_4``: SRGAN's "VGG54" (feature map of the 4th conv, after its ReLU, before the 5th
  pool). SRGAN also rescaled the feature maps by 1/12.75 ("equivalent to multiplying [the loss] with a
  rescaling factor of about 0.006"); that is ``feature_scale=1/12.75``. The default here is
  ``feature_scale=1`` (the plain MSE), so that values do not silently carry one paper's constant.
* ``vgg19_conv3_3``: DeblurGAN's official code (``vgg19().features`` up to index 14: conv3_3 of VGG19,
  before its ReLU); the paper describes it as "VGG3,3".
* ``vgg16_relu3_3``: the classic feature-reconstruction layer of Johnson et al.'s perceptual losses.

:func:`perceptual_distance` is the metric (checks the value range); :class:`PerceptualLoss` is the same
number as an ``nn.Module`` for training (no range check, since generator outputs may overshoot; the
target's features carry no gradient).
"""

import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ganbench.checks import as_image_batch, check_reduction, check_same_shape, reduce_per_image
from ganbench.errors import ImageRangeError, WeightsNotFoundError
from ganbench.features.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGGFeatures,
    default_vgg_weights,
    load_vgg_features,
    parse_network,
)

DEFAULT_NETWORK = "vgg16_relu3_3"


def perceptual_distance(
    preds,
    target,
    network: str = DEFAULT_NETWORK,
    weights: str | os.PathLike | None = None,
    data_range: float = 1.0,
    reduction: str = "mean",
    feature_scale: float = 1.0,
) -> torch.Tensor:
    """VGG perceptual distance between paired image batches ``(N, C, H, W)`` with values in [0, data_range].

    ``weights``: see :func:`ganbench.features.vgg.load_vgg_features` (the network is cached per
    network, weights file and device). ``reduction="mean"`` gives a scalar, ``"none"`` one value per
    image. Raises :class:`ImageRangeError` when values leave [0, data_range] (by more than 0.1% of it),
    e.g. [-1, 1] images with ``data_range=1``.
    """
    preds, target = _validated_pair(preds, target)
    for name, x in (("preds", preds), ("target", target)):
        lo, hi = float(x.min()), float(x.max())
        slack = 1e-3 * data_range
        if lo < -slack or hi > data_range + slack:
            raise ImageRangeError(
                f"{name}: values span [{lo:.4g}, {hi:.4g}], outside [0, data_range={data_range}]; "
                "rescale the images or set data_range"
            )
    features = _cached_features(network, *_resolve_weights(network, weights), str(preds.device))
    per_image = _feature_mse(features, preds, target, data_range, feature_scale, detach_target=False)
    return reduce_per_image(per_image, reduction)


class PerceptualLoss(nn.Module):
    """:func:`perceptual_distance` as a training loss: ``loss(preds, target)``, gradients flow to ``preds``.

    The VGG weights are frozen (``requires_grad=False``) and the target's features are computed without
    gradient. Move the module with ``.to(device)`` like any other.
    """

    def __init__(
        self,
        network: str = DEFAULT_NETWORK,
        weights: str | os.PathLike | None = None,
        data_range: float = 1.0,
        feature_scale: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.network = network
        self.data_range = data_range
        self.feature_scale = feature_scale
        self.vgg = load_vgg_features(network, weights)

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        preds, target = _validated_pair(preds, target)
        per_image = _feature_mse(
            self.vgg, preds, target, self.data_range, self.feature_scale, detach_target=True
        )
        return reduce_per_image(per_image, self.reduction)

    def extra_repr(self) -> str:
        return f"network={self.network!r}, data_range={self.data_range}, feature_scale={self.feature_scale}"


def _validated_pair(preds, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches as float ``(N, C, H, W)`` tensors of one shape (``C`` in {1, 3})."""
    preds, target = as_image_batch(preds, "preds"), as_image_batch(target, "target")
    check_same_shape(preds, target)
    if not preds.is_floating_point():
        preds = preds.float()
    return preds, target.to(preds.device, preds.dtype)


def _feature_mse(
    vgg: VGGFeatures,
    preds: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    feature_scale: float,
    detach_target: bool,
) -> torch.Tensor:
    """Per-image mean squared difference of the scaled feature maps, shape ``(N,)``."""
    dtype = next(vgg.parameters()).dtype
    mean = torch.tensor(IMAGENET_MEAN, device=preds.device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=preds.device, dtype=dtype).view(1, 3, 1, 1)

    def embed(x: torch.Tensor) -> torch.Tensor:
        x = (x.to(dtype) / data_range).expand(-1, 3, -1, -1)
        return vgg((x - mean) / std) * feature_scale

    pred_features = embed(preds)
    if detach_target:
        with torch.no_grad():
            target_features = embed(target)
    else:
        target_features = embed(target)
    return (pred_features - target_features).pow(2).flatten(1).mean(1)


def _resolve_weights(network: str, weights) -> tuple[str, tuple[int, int]]:
    """``("random", ())`` or the weights file's resolved path with its (size, mtime) as a cache stamp."""
    if isinstance(weights, str) and weights == "random":
        return "random", ()
    path = default_vgg_weights(parse_network(network)[0]) if weights is None else Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"VGG weights {str(path)!r} do not exist")
    stat = path.stat()
    return str(path.resolve()), (stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _cached_features(network: str, weights: str, stamp: tuple, device: str) -> VGGFeatures:
    """The frozen VGG for ``network`` and ``weights`` on ``device`` (``stamp`` renews it on file changes)."""
    return load_vgg_features(network, weights).to(device)
