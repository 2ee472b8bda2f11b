"""SRResNet generator and SRGAN discriminator (seed 003; layer widths from Ledig et al., CVPR 2017).

The seed sketches SRGAN as "16 residual blocks, PixelShuffle, VGG perceptual + adversarial loss"; the
exact layers follow the SRGAN paper (Fig. 4), as the project's issue asks:

* :class:`SRResNet`: ``Conv 9x9 (64) -> PReLU``; 16 residual blocks ``Conv 3x3 -> BN -> PReLU -> Conv
  3x3 -> BN -> + input``; ``Conv 3x3 -> BN -> + (output of the first PReLU)``; two up-sampling stages
  ``Conv 3x3 (256) -> PixelShuffle(2) -> PReLU`` (x4); ``Conv 9x9 (3) -> tanh`` (the seed's output
  activation). 1,549,462 parameters at the defaults (the paper's SRResNet is quoted as 1.5M).
* :class:`SRGANDiscriminator`: eight ``Conv 3x3`` with 64, 64, 128, 128, 256, 256, 512, 512 filters and
  strides 1, 2, 1, 2, 1, 2, 1, 2, ``LeakyReLU(0.2)`` after each and BatchNorm after all but the first;
  ``Dense 1024 -> LeakyReLU(0.2) -> Dense 1``. The dense layer fixes the input size (paper: 96x96).

Tensors, as in the paper: the low-resolution input is ``(N, 3, h, w)`` float in ``[0, 1]``; the
generator returns ``(N, 3, 4h, 4w)`` in ``[-1, 1]`` (the paper computes the MSE on HR images scaled to
``[-1, 1]``); the discriminator takes ``(N, 3, S, S)`` HR images in ``[-1, 1]`` and returns ``(N, 1)``
logits (``sigmoid`` of them is the paper's probability; train with ``BCEWithLogitsLoss``).
"""

import torch
from torch import nn

from ganbench.errors import ImageShapeError

__all__ = ["SRResNet", "SRGANDiscriminator"]


class ResidualBlock(nn.Module):
    """``Conv 3x3 -> BN -> PReLU -> Conv 3x3 -> BN``, added to the block's input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet / SRGAN generator: ``(N, C, h, w)`` in [0, 1] -> ``(N, C, h*scale, w*scale)`` in [-1, 1].

    Args:
        channels: image channels (3).
        features: feature maps of the trunk (64).
        num_blocks: residual blocks (16).
        scale: up-scaling factor, a power of two (4: two PixelShuffle x2 stages).
    """

    def __init__(self, channels: int = 3, features: int = 64, num_blocks: int = 16, scale: int = 4):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"SRResNet: scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, features, 9, padding=4), nn.PReLU())
        self.trunk = nn.Sequential(
            *[ResidualBlock(features) for _ in range(num_blocks)],
            nn.Conv2d(features, features, 3, padding=1),
            nn.BatchNorm2d(features),
        )
        upsample = []
        for _ in range(scale.bit_length() - 1):
            upsample += [nn.Conv2d(features, 4 * features, 3, padding=1), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Sequential(nn.Conv2d(features, channels, 9, padding=4), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        return self.tail(self.upsample(features + self.trunk(features)))


def _conv_block(in_channels: int, out_channels: int, stride: int, batch_norm: bool) -> list[nn.Module]:
    """``Conv 3x3 [-> BN] -> LeakyReLU(0.2)`` as a list of layers."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return layers


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator: ``(N, C, S, S)`` HR images in [-1, 1] -> ``(N, 1)`` logits.

    23,565,505 parameters at the defaults (``image_size=96``: the dense layer sees 512 x 6 x 6).

    Args:
        channels: image channels (3).
        image_size: side ``S`` of the square input, a multiple of 16 (96 in the paper).
        features: filters of the first conv (64); they double every two convs.
    """

    widths_and_strides = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))

    def __init__(self, channels: int = 3, image_size: int = 96, features: int = 64):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"SRGANDiscriminator: image_size must be a multiple of 16, got {image_size}")
        self.image_size = image_size
        layers: list[nn.Module] = []
        in_channels = channels
        for index, (width, stride) in enumerate(self.widths_and_strides):
            layers += _conv_block(in_channels, width * features, stride, batch_norm=index > 0)
            in_channels = width * features
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.image_size, self.image_size):
            raise ImageShapeError(
                f"SRGANDiscriminator: expected (N, C, {self.image_size}, {self.image_size}) images, "
                f"got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))
