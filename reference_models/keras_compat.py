"""PyTorch layers that behave exactly like the Keras layers the Keras seeds (CycleGAN, DeblurGAN) use.

Differences from the PyTorch defaults that these layers remove:

* ``padding='same'`` in TensorFlow/Keras pads ``max((ceil(n/s) - 1)*s + k - n, 0)`` pixels per axis,
  the odd pixel at the bottom/right, so e.g. a 3x3 stride-2 convolution of an even input is padded
  (0, 1), not PyTorch's symmetric (1, 1): :class:`Conv2dSame`, :class:`ConvTranspose2dSame`.
* ``BatchNormalization()`` has ``epsilon=1e-3`` and a moving-average ``momentum=0.99`` (PyTorch's
  ``momentum=0.01``): :func:`keras_batch_norm`.
* ``keras_contrib`` ``InstanceNormalization()`` with its default ``axis=None`` normalises each sample
  over all of (C, H, W) with one scalar gamma and beta, dividing by ``std + 1e-3``:
  :class:`KerasContribInstanceNorm`.

Keras initialises kernels with ``glorot_uniform`` and biases with zeros: the networks call
``reference_models.tricks.init_weights(net, "xavier")``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv2dSame",
    "ConvTranspose2dSame",
    "KerasContribInstanceNorm",
    "keras_batch_norm",
]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``'same'`` padding ``(before, after)`` of one axis (extra pixel after)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with Keras ``padding='same'``: output size ``ceil(n / stride)``, odd pad at the end."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        pad_w = _same_padding(x.shape[-1], kw, sw)
        pad_h = _same_padding(x.shape[-2], kh, sh)
        return super().forward(F.pad(x, (*pad_w, *pad_h)))


class ConvTranspose2dSame(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with Keras ``padding='same'``: output size ``n * stride``.

    Keras keeps the rows/columns ``[before, before + n*stride)`` of the full transposed convolution,
    with ``before`` the leading ``'same'`` pad of the forward convolution of size ``n*stride``; PyTorch's
    ``padding=1, output_padding=1`` keeps a window shifted by one pixel instead.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        out_h, out_w = x.shape[-2] * sh, x.shape[-1] * sw
        top = _same_padding(out_h, kh, sh)[0]
        left = _same_padding(out_w, kw, sw)[0]
        return full[..., top : top + out_h, left : left + out_w]


class KerasContribInstanceNorm(nn.Module):
    """``keras_contrib.layers.InstanceNormalization()`` with its defaults (``axis=None``, ``epsilon=1e-3``).

    Each sample is normalised over all its (C, H, W) values as ``(x - mean) / (std + eps)`` (biased
    std, epsilon added to the std), then scaled and shifted by a single learned scalar pair.
    """

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        std = x.std(dim=dims, keepdim=True, correction=0)
        return (x - mean) / (std + self.eps) * self.weight + self.bias


def keras_batch_norm(num_features: int) -> nn.BatchNorm2d:
    """``BatchNormalization()`` of Keras: ``epsilon=1e-3``, moving averages with ``momentum=0.99``."""
    return nn.BatchNorm2d(num_features, eps=1e-3, momentum=0.01)
