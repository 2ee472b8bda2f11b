"""SRResNet generator and SRGAN discriminator (seed 003; layer widths from Ledig et al., CVPR 2017).

The seed sketches SRGAN as "16 residual blocks, PixelShuffle, VGG perceptual + adversarial loss"; the
exact layers follow the SRGAN paper (Fig. 4), as the project's issue asks:

* :class:`SRResNet`: ``Conv 9x9 (64) -> PReLU``; 16 residual blocks ``Conv 3x3 -> BN -> PReLU -> Conv
  3x3 -> BN -> + input``; ``Conv 3x3 -> BN -> + (output of the first PReLU)``; two up-sampling stages
  ``Conv 3x3 (256) -> PixelShuffle(2) -> PReLU`` (x4); ``Conv 9x9 (3) -> tanh`` (the seed's output
  activation). 1,549,462 parameters at the defaults (the paper's SRResNet is quoted as 1.5M).
  ``global_skip="bicubic"`` (not in the paper; the CPU configs use it) adds the bicubic up-sampling of
  the input to the output, as in VDSR (Kim et al., CVPR 2016): the network then learns only the
  residual detail, starting from bicubic quality instead of from noise, which is what lets a small
  network beat bicubic within minutes of CPU training.
* :class:`SRGANDiscriminator`: eight ``Conv 3x3`` with 64, 64, 128, 128, 256, 256, 512, 512 filters and
  strides 1, 2, 1, 2, 1, 2, 1, 2, ``LeakyReLU(0.2)`` after each and BatchNorm after all but the first;
  ``Dense 1024 -> LeakyReLU(0.2) -> Dense 1``. The dense layer fixes the input size (paper: 96x96).

Tensors, as in the paper: the low-resolution input is ``(N, 3, h, w)`` float in ``[0, 1]``; the
generator returns ``(N, 3, 4h, 4w)`` in ``[-1, 1]`` (the paper computes the MSE on HR images scaled to
``[-1, 1]``); the discriminator takes ``(N, 3, S, S)`` HR images in ``[-1, 1]`` and returns ``(N, 1)``
logits (``sigmoid`` of them is the paper's probability; train with ``BCEWithLogitsLoss``).

The engine's models (:class:`~reference_models.image2image.PairedImageModel`, batches ``{"lr", "hr"}``
of the ``sr-crops`` data set): ``srresnet``, the generator trained with a content loss alone (the
paper's SRResNet-MSE: ``configs/srresnet/paper.toml``), and ``srgan``, generator and discriminator
with ``content + 1e-3 * adversarial`` (paper: VGG54 content), ``G`` initialised from an SRResNet
checkpoint named by ``model.init_from`` (:class:`SRGANModel`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import CheckpointError, ImageShapeError
from reference_models.checkpoint import load_checkpoint
from reference_models.engine import GANModel, LossTerms
from reference_models.image2image import ContentLoss, PairedImageModel
from reference_models.registry import register_model

__all__ = ["SRResNet", "SRGANDiscriminator", "SRGANModel", "build_srresnet", "build_srgan"]


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
        global_skip: ``"none"`` (the paper) or ``"bicubic"``: the output is the bicubic up-sampling of
            the input (``F.interpolate``, in ``[-1, 1]``) plus the network's ``tanh`` output.
    """

    GLOBAL_SKIPS = ("none", "bicubic")

    def __init__(
        self,
        channels: int = 3,
        features: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
        global_skip: str = "none",
    ):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"SRResNet: scale must be a power of two >= 2, got {scale}")
        if global_skip not in self.GLOBAL_SKIPS:
            raise ValueError(f"SRResNet: global_skip must be one of {self.GLOBAL_SKIPS}, got {global_skip!r}")
        self.scale, self.global_skip = scale, global_skip
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
        out = self.tail(self.upsample(features + self.trunk(features)))
        if self.global_skip == "bicubic":
            out = out + F.interpolate(2.0 * x - 1.0, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


def _conv_block(
    in_channels: int, out_channels: int, stride: int, batch_norm: bool, dropout: float = 0.0
) -> list[nn.Module]:
    """``Conv 3x3 [-> BN] -> LeakyReLU(0.2) [-> Dropout]`` as a list of layers."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator: ``(N, C, S, S)`` HR images in [-1, 1] -> ``(N, 1)`` logits.

    23,565,505 parameters at the defaults (``image_size=96``: the dense layer sees 512 x 6 x 6).

    Args:
        channels: image channels (3).
        image_size: side ``S`` of the square input, a multiple of 16 (96 in the paper).
        features: filters of the first conv (64); they double every two convs.
        dropout: dropout after each convolutional activation (0: none, as in the paper).
    """

    widths_and_strides = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))

    def __init__(self, channels: int = 3, image_size: int = 96, features: int = 64, dropout: float = 0.0):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"SRGANDiscriminator: image_size must be a multiple of 16, got {image_size}")
        self.image_size = image_size
        layers: list[nn.Module] = []
        in_channels = channels
        for index, (width, stride) in enumerate(self.widths_and_strides):
            layers += _conv_block(in_channels, width * features, stride, index > 0, dropout)
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


# ---
# The models the engine trains: SRResNet (content only) and SRGAN (content + adversarial).

SR_TASK = "sr-x4"


def _crop_and_scale(config: dict) -> tuple[int, int]:
    """The HR crop side and the scale of the ``[data]`` table (``sr-crops``' defaults: 96, 4)."""
    return config["data"].get("crop_size", 96), config["data"].get("scale", 4)


@register_model("srresnet", "SRResNet x4 trained with a content loss only (Ledig et al. 2017; seed 003)")
def build_srresnet(
    config: dict,
    *,
    features: int = 64,
    num_blocks: int = 16,
    global_skip: str = "none",
    content: str = "pixel-mse",
    vgg_network: str = "vgg19_relu5_4",
    vgg_weights: str = "",
    vgg_feature_scale: float = 1 / 12.75,
) -> GANModel:
    """SRResNet (the paper's: 64 features, 16 blocks) with the content loss alone ("SRResNet-MSE").

    Batches ``{"lr" in [0, 1], "hr" in [-1, 1]}`` (``sr-crops``); the scale is ``data.scale``.
    """
    _, scale = _crop_and_scale(config)
    return PairedImageModel(
        SRResNet(3, features, num_blocks, scale, global_skip),
        None,
        config,
        input_key="lr",
        target_key="hr",
        content=ContentLoss(
            content, vgg_network=vgg_network, vgg_weights=vgg_weights, vgg_feature_scale=vgg_feature_scale
        ),
        input_range=(0.0, 1.0),
        name="srresnet",
        task=SR_TASK,
    )


class SRGANModel(PairedImageModel):
    """SRGAN: a :class:`PairedImageModel` whose generator starts from a trained SRResNet.

    ``init_from`` (a checkpoint record, tensor file or run folder of ``srresnet`` or ``srgan``) is
    loaded into ``G`` just before the first update of a fresh run, not when the model is built: a
    model loaded from a checkpoint (resume, evaluation) takes its weights from that checkpoint and
    never needs the SRResNet one.
    """

    def __init__(self, *args, init_from: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.init_from = init_from
        self._init_pending = bool(init_from)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._init_pending = False  # a checkpoint's weights replace the initialisation
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def loss(self, player: str, batch: dict, ctx) -> LossTerms:
        if self._init_pending:
            self.initialise_generator()
        return super().loss(player, batch, ctx)

    @torch.no_grad()
    def initialise_generator(self) -> None:
        """Copy the generator of the ``init_from`` checkpoint into ``G`` (in place, so the optimizer's
        references stay valid); :class:`CheckpointError` when it is not a fitting SR checkpoint."""
        try:
            checkpoint = load_checkpoint(self.init_from)
        except CheckpointError as exc:
            raise CheckpointError(
                f"model.init_from = {self.init_from!r}: {exc}. Train the SRResNet first (e.g. `ganbench "
                "train srresnet --config cpu`, run folder runs/srresnet-cpu) or set model.init_from"
            ) from None
        model = checkpoint.record["model"]
        if model not in ("srresnet", "srgan"):
            raise CheckpointError(
                f"model.init_from: {checkpoint.path} is a {model!r} checkpoint, not srresnet or srgan"
            )
        state = checkpoint.tensors_with_prefix("model.G.")
        try:
            self.G.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"model.init_from: the generator of {checkpoint.path} does not fit this SRGAN's "
                f"(model.features / model.num_blocks must match the SRResNet's): {exc}"
            ) from None
        self._init_pending = False


@register_model("srgan", "SRGAN x4: SRResNet + discriminator, VGG54 content loss (Ledig et al. 2017)")
def build_srgan(
    config: dict,
    *,
    features: int = 64,
    num_blocks: int = 16,
    global_skip: str = "none",
    d_features: int = 64,
    content: str = "vgg",
    vgg_network: str = "vgg19_relu5_4",
    vgg_weights: str = "",
    vgg_feature_scale: float = 1 / 12.75,
    content_weight: float = 1.0,
    adv_weight: float = 1e-3,
    init_from: str = "",
) -> GANModel:
    """SRGAN: ``content_weight * content + adv_weight * adversarial`` (paper: VGG54 + 1e-3).

    The discriminator's input side is ``data.crop_size``; ``init_from`` names the SRResNet
    checkpoint ``G`` starts from (empty: a random initialisation).
    """
    crop_size, scale = _crop_and_scale(config)
    return SRGANModel(
        SRResNet(3, features, num_blocks, scale, global_skip),
        SRGANDiscriminator(3, crop_size, d_features, dropout=config["tricks"]["d_dropout"]),
        config,
        input_key="lr",
        target_key="hr",
        content=ContentLoss(
            content, vgg_network=vgg_network, vgg_weights=vgg_weights, vgg_feature_scale=vgg_feature_scale
        ),
        content_weight=content_weight,
        adv_weight=adv_weight,
        input_range=(0.0, 1.0),
        name="srgan",
        task=SR_TASK,
        init_from=init_from,
    )
