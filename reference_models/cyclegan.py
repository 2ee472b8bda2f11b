"""CycleGAN networks of seed 002 (Keras, apple <-> orange): a U-Net generator and a PatchGAN discriminator.

Translation of the seed's ``build_generator`` / ``build_discriminator`` (the Keras-GAN CycleGAN):

* generator: four down-sampling blocks ``Conv 4x4 stride 2 'same' -> LeakyReLU(0.2) -> InstanceNorm``
  with ``gf, 2gf, 4gf, 8gf`` filters (``gf = 32``); three up-sampling blocks ``nearest x2 -> Conv 4x4
  'same' -> ReLU -> InstanceNorm -> concat(skip)`` with ``4gf, 2gf, gf`` filters, skips from the
  down blocks 3, 2, 1; then ``nearest x2 -> Conv 4x4 'same' -> tanh``. No dropout (the seed's
  ``dropout_rate`` is 0).
* discriminator: ``Conv 4x4 stride 2 'same' -> LeakyReLU(0.2) [-> InstanceNorm]`` with ``df, 2df, 4df,
  8df`` filters (``df = 64``, no norm on the first), then ``Conv 4x4 stride 1 'same'`` to one channel: a
  ``(H/16, W/16)`` patch of raw scores (the seed trains it with MSE against 1/0: LSGAN).

The seed's ``InstanceNormalization()`` is keras_contrib's with ``axis=None``, which normalises each
sample over (C, H, W) with one scalar gamma/beta; ``norm="keras_contrib"`` (default) reproduces it,
``norm="instance"`` uses the per-channel instance norm of the CycleGAN paper (``nn.InstanceNorm2d``,
affine). Layers are initialised like Keras (glorot-uniform kernels, zero biases).

Tensors: images ``(N, C, H, W)`` float in ``[-1, 1]`` (the seed's ``img / 127.5 - 1``), ``H`` and ``W``
multiples of 16 (seed: 128x128, ``C = 3``); the generator returns the same shape in ``[-1, 1]``.
"""

import torch
from torch import nn

from ganbench.errors import ImageShapeError
from reference_models.keras_compat import Conv2dSame, KerasContribInstanceNorm
from reference_models.tricks import init_weights

__all__ = ["UNetGenerator", "PatchDiscriminator"]

NORMS = ("keras_contrib", "instance")


def _norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer named ``kind`` (one of :data:`NORMS`) for ``channels`` channels."""
    if kind == "keras_contrib":
        return KerasContribInstanceNorm()
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def _check_multiple(x: torch.Tensor, multiple: int, what: str) -> None:
    """Raise :class:`ImageShapeError` unless ``x`` is ``(N, C, H, W)`` with H, W multiples of ``multiple``."""
    if x.ndim != 4 or x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ImageShapeError(
            f"{what}: expected (N, C, H, W) with H and W multiples of {multiple}, got {tuple(x.shape)}"
        )


class _Down(nn.Sequential):
    """``Conv 4x4 stride 2 'same' -> LeakyReLU(0.2) [-> norm]`` (seed: ``conv2d`` / ``d_layer``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None):
        layers = [Conv2dSame(in_channels, out_channels, 4, stride=2), nn.LeakyReLU(0.2)]
        if norm is not None:
            layers.append(_norm(norm, out_channels))
        super().__init__(*layers)


class _Up(nn.Module):
    """``nearest x2 -> Conv 4x4 'same' -> ReLU -> norm``, then concatenate the skip (seed: ``deconv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            Conv2dSame(in_channels, out_channels, 4),
            nn.ReLU(),
            _norm(norm, out_channels),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.body(x), skip], dim=1)


class UNetGenerator(nn.Module):
    """The seed's U-Net generator ``G``/``F`` (1,545,425 parameters for ``channels=3, gf=32``)."""

    def __init__(self, channels: int = 3, gf: int = 32, norm: str = "keras_contrib"):
        super().__init__()
        self.down = nn.ModuleList(
            [
                _Down(channels, gf, norm),
                _Down(gf, 2 * gf, norm),
                _Down(2 * gf, 4 * gf, norm),
                _Down(4 * gf, 8 * gf, norm),
            ]
        )
        self.up = nn.ModuleList([_Up(8 * gf, 4 * gf, norm), _Up(8 * gf, 2 * gf, norm), _Up(4 * gf, gf, norm)])
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), Conv2dSame(2 * gf, channels, 4), nn.Tanh()
        )
        init_weights(self, "xavier")  # Keras: glorot-uniform kernels, zero biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_multiple(x, 16, "UNetGenerator input")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)


class PatchDiscriminator(nn.Module):
    """The seed's PatchGAN discriminator ``Dx``/``Dy``: ``(N, C, H, W) -> (N, 1, H/16, W/16)`` scores.

    2,764,743 parameters for ``channels=3, df=64`` (keras_contrib norm). The output is linear (no
    sigmoid): the seed fits it with MSE to 1 (real) / 0 (fake).
    """

    def __init__(self, channels: int = 3, df: int = 64, norm: str = "keras_contrib"):
        super().__init__()
        self.body = nn.Sequential(
            _Down(channels, df, None),
            _Down(df, 2 * df, norm),
            _Down(2 * df, 4 * df, norm),
            _Down(4 * df, 8 * df, norm),
            Conv2dSame(8 * df, 1, 4),
        )
        init_weights(self, "xavier")  # Keras: glorot-uniform kernels, zero biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_multiple(x, 16, "PatchDiscriminator input")
        return self.body(x)
