"""DeblurGAN networks of seed 004 (Keras port of Kupyn et al. 2018): ResNet generator and critic.

Translation of the seed's ``generator_model`` / ``discriminator_model`` (``ngf = ndf = 64``, 9 blocks):

* generator: ``ReflectionPad(3) -> Conv 7x7 (ngf) -> BN -> ReLU``; two down-samplings ``Conv 3x3 stride 2
  'same' -> BN -> ReLU`` (2ngf, 4ngf); 9 residual blocks ``ReflectionPad(1) -> Conv 3x3 -> BN -> ReLU ->
  Dropout(0.5) -> ReflectionPad(1) -> Conv 3x3 -> BN -> + input``; two up-samplings ``ConvTranspose 3x3
  stride 2 'same' -> BN -> ReLU`` (2ngf, ngf); ``ReflectionPad(3) -> Conv 7x7 (3) -> tanh``; then the
  seed's global skip ``output = (2 * tanh_out + input) / 3`` (``global_skip = "average"``), or the
  DeblurGAN paper's ``output = input + tanh_out`` (``global_skip = "residual"``, Kupyn et al. 2018,
  Sec. 3.1: the network learns a residual correction of the blurred image; the CPU config uses it,
  since it starts at the blurred input instead of a third of it).
* critic: ``Conv 4x4 stride 2 'same' (ndf) -> LeakyReLU(0.2)``; three ``Conv 4x4 stride 2 'same' -> BN ->
  LeakyReLU(0.2)`` with ``ndf * min(2**n, 8)`` = 64, 128, 256 filters (the seed's loop starts at
  ``2**0``); ``Conv 4x4 'same' (8ndf) -> BN -> LeakyReLU(0.2)``; ``Conv 4x4 'same' (1)``; ``Flatten ->
  Dense 1024 -> tanh -> Dense 1``. The seed ends with a sigmoid (``sigmoid_output=True``); a WGAN-GP
  critic must be unbounded, so the default drops it, as Kupyn et al.'s own code does for WGAN-GP.

Keras details are kept: TF ``'same'`` padding, BatchNorm ``eps=1e-3, momentum=0.99``, glorot-uniform
init. Tensors: ``(N, 3, H, W)`` float in ``[-1, 1]`` (the seed's ``(img - 127.5) / 127.5``); the
generator needs ``H, W`` multiples of 4 and returns the same shape, in ``[-1, 1]``; the critic takes
``(N, 3, S, S)`` (seed: 256x256, ``S`` a multiple of 16) and returns ``(N, 1)`` scores.

The engine's model ``deblurgan`` (:class:`~reference_models.image2image.PairedImageModel`, batches
``{"blurred", "sharp"}`` of the ``motion-blur`` data set): WGAN-GP with five critic updates on one
batch, and the generator's loss ``100 * perceptual + adversarial`` (``configs/deblurgan/paper.toml``).
"""

import torch
from torch import nn

from ganbench.errors import ImageShapeError
from reference_models.engine import GANModel
from reference_models.image2image import ContentLoss, PairedImageModel
from reference_models.keras_compat import Conv2dSame, ConvTranspose2dSame, keras_batch_norm
from reference_models.registry import register_model
from reference_models.tricks import init_weights

__all__ = ["ResnetGenerator", "DeblurCritic", "build_deblurgan"]


def _norm(kind: str, channels: int) -> nn.Module:
    """The generator's normalisation layer: Keras BatchNorm (``"batch"``, the seed) or none."""
    return keras_batch_norm(channels) if kind == "batch" else nn.Identity()


class ResnetBlock(nn.Module):
    """The seed's ``res_block``: two reflection-padded 3x3 convs with BN, ReLU and dropout between."""

    def __init__(self, channels: int, dropout: float = 0.5, norm: str = "batch"):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(norm, channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """DeblurGAN generator: blurred ``(N, C, H, W)`` in [-1, 1] -> restored, same shape, in [-1, 1].

    Args:
        channels: image channels (3); input and output share them (global skip).
        ngf: filters of the first conv (64).
        num_blocks: residual blocks (9).
        dropout: dropout rate inside the residual blocks (0.5).
        global_skip: ``"average"`` (the seed: ``(2 * out + x) / 3``) or ``"residual"`` (the paper:
            ``x + out``; the last convolution starts at zero, so the untrained generator returns its
            input).
        norm: ``"batch"`` (the seed's BatchNorm) or ``"none"``.
    """

    GLOBAL_SKIPS = ("average", "residual")
    NORMS = ("batch", "none")

    def __init__(
        self,
        channels: int = 3,
        ngf: int = 64,
        num_blocks: int = 9,
        dropout: float = 0.5,
        global_skip: str = "average",
        norm: str = "batch",
    ):
        super().__init__()
        if global_skip not in self.GLOBAL_SKIPS:
            raise ValueError(f"ResnetGenerator: global_skip must be one of {self.GLOBAL_SKIPS}, got {global_skip!r}")
        if norm not in self.NORMS:
            raise ValueError(f"ResnetGenerator: norm must be one of {self.NORMS}, got {norm!r}")
        self.global_skip = global_skip
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),
            _norm(norm, ngf),
            nn.ReLU(),
        ]
        for mult in (1, 2):
            layers += [
                Conv2dSame(ngf * mult, ngf * mult * 2, 3, stride=2),
                _norm(norm, ngf * mult * 2),
                nn.ReLU(),
            ]
        layers += [ResnetBlock(4 * ngf, dropout, norm) for _ in range(num_blocks)]
        for mult in (4, 2):
            layers += [
                ConvTranspose2dSame(ngf * mult, ngf * mult // 2, 3, stride=2),
                _norm(norm, ngf * mult // 2),
                nn.ReLU(),
            ]
        last = nn.Conv2d(ngf, channels, 7)
        layers += [nn.ReflectionPad2d(3), last, nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_weights(self, "xavier")  # Keras: glorot-uniform kernels, zero biases
        if global_skip == "residual":  # learn a correction of the input, starting from none
            nn.init.zeros_(last.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ImageShapeError(
                f"ResnetGenerator: expected (N, C, H, W) with H and W multiples of 4, got {tuple(x.shape)}"
            )
        if self.global_skip == "residual":
            return x + self.body(x)
        return (2 * self.body(x) + x) / 3


class DeblurCritic(nn.Module):
    """DeblurGAN critic: ``(N, C, S, S)`` images in [-1, 1] -> ``(N, 1)`` scores.

    Args:
        channels: image channels (3).
        image_size: side ``S`` of the square input, a multiple of 16 (256 in the seed); the dense head
            sees the ``(S/16)**2`` patch scores.
        ndf: filters of the first conv (64).
        sigmoid_output: end with the seed's sigmoid (off for WGAN-GP).
        dropout: dropout after each LeakyReLU (0: none, as in the seed).
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 256,
        ndf: int = 64,
        sigmoid_output: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"DeblurCritic: image_size must be a multiple of 16, got {image_size}")
        self.image_size = image_size

        def activation() -> list[nn.Module]:
            return [nn.LeakyReLU(0.2)] + ([nn.Dropout(dropout)] if dropout else [])

        layers: list[nn.Module] = [Conv2dSame(channels, ndf, 4, stride=2), *activation()]
        in_channels = ndf
        for n in range(3):
            out_channels = ndf * min(2**n, 8)
            layers += [
                Conv2dSame(in_channels, out_channels, 4, stride=2),
                keras_batch_norm(out_channels),
                *activation(),
            ]
            in_channels = out_channels
        layers += [Conv2dSame(in_channels, 8 * ndf, 4), keras_batch_norm(8 * ndf), *activation()]
        layers += [Conv2dSame(8 * ndf, 1, 4), nn.Flatten()]
        layers += [nn.Linear((image_size // 16) ** 2, 1024), nn.Tanh(), nn.Linear(1024, 1)]
        if sigmoid_output:
            layers.append(nn.Sigmoid())
        self.body = nn.Sequential(*layers)
        init_weights(self, "xavier")  # Keras: glorot-uniform kernels, zero biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.image_size, self.image_size):
            raise ImageShapeError(
                f"DeblurCritic: expected (N, C, {self.image_size}, {self.image_size}) images, "
                f"got {tuple(x.shape)}"
            )
        return self.body(x)


@register_model("deblurgan", "DeblurGAN: ResNet generator, WGAN-GP critic, perceptual loss (seed 004)")
def build_deblurgan(
    config: dict,
    *,
    ngf: int = 64,
    num_blocks: int = 9,
    dropout: float = 0.5,
    global_skip: str = "average",
    norm: str = "batch",
    ndf: int = 64,
    content: str = "vgg",
    vgg_network: str = "vgg16_relu3_3",
    vgg_weights: str = "",
    vgg_feature_scale: float = 1.0,
    content_weight: float = 100.0,
    adv_weight: float = 1.0,
) -> GANModel:
    """Seed 004's DeblurGAN: ``G`` (``ngf``, ``num_blocks``, ``dropout``, ``global_skip``, ``norm``), the
    critic (``ndf``) on ``data.crop_size`` squares, loss ``content_weight * content + adv_weight *
    adversarial`` (seed: VGG16 ``block3_conv3`` x 100 : 1). Batches ``{"blurred", "sharp"}`` in [-1, 1]
    (``motion-blur``)."""
    return PairedImageModel(
        ResnetGenerator(3, ngf, num_blocks, dropout, global_skip, norm),
        DeblurCritic(3, config["data"].get("crop_size", 256), ndf, dropout=config["tricks"]["d_dropout"]),
        config,
        input_key="blurred",
        target_key="sharp",
        content=ContentLoss(
            content, vgg_network=vgg_network, vgg_weights=vgg_weights, vgg_feature_scale=vgg_feature_scale
        ),
        content_weight=content_weight,
        adv_weight=adv_weight,
        name="deblurgan",
        task="deblur",
    )
