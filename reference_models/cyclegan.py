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

The engine's model ``cyclegan`` is :class:`CycleGANModel` (family 3 of :mod:`reference_models.engine`):
unpaired batches ``{"a", "b"}`` of the ``image-folders`` (apple2orange) or ``mnist-mnistm`` data sets.
"""

import torch
from torch import nn

from ganbench.errors import ConfigError, ImageShapeError
from reference_models.engine import Adversary, GANModel, LossTerms, StepContext
from reference_models.image2image import refuse_sampling
from reference_models.keras_compat import Conv2dSame, KerasContribInstanceNorm
from reference_models.registry import register_model
from reference_models.tricks import init_weights

__all__ = ["UNetGenerator", "PatchDiscriminator", "CycleGANModel", "build_cyclegan"]

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
    """``Conv 4x4 stride 2 'same' -> LeakyReLU(0.2) [-> norm] [-> Dropout]`` (``conv2d``, ``d_layer``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None, dropout: float = 0.0):
        layers = [Conv2dSame(in_channels, out_channels, 4, stride=2), nn.LeakyReLU(0.2)]
        if norm is not None:
            layers.append(_norm(norm, out_channels))
        if dropout:
            layers.append(nn.Dropout(dropout))
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
    sigmoid): the seed fits it with MSE to 1 (real) / 0 (fake). ``dropout`` after each block (0: none,
    as in the seed).
    """

    def __init__(self, channels: int = 3, df: int = 64, norm: str = "keras_contrib", dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            _Down(channels, df, None, dropout),
            _Down(df, 2 * df, norm, dropout),
            _Down(2 * df, 4 * df, norm, dropout),
            _Down(4 * df, 8 * df, norm, dropout),
            Conv2dSame(8 * df, 1, 4),
        )
        init_weights(self, "xavier")  # Keras: glorot-uniform kernels, zero biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_multiple(x, 16, "PatchDiscriminator input")
        return self.body(x)


class CycleGANModel(GANModel):
    """CycleGAN (Zhu et al. 2017) as seed 002 trains it: ``G_AB: A -> B``, ``G_BA: B -> A``, ``D_A``, ``D_B``.

    Batches are unpaired ``{"a", "b"}`` images in ``[-1, 1]``. One optimizer updates both generators
    on ``adv_weight * (adv(G_AB(a)) + adv(G_BA(b))) + cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b))
    - b|) + identity_weight * (|G_BA(a) - a| + |G_AB(b) - b|)`` (L1 terms are pixel means), then one
    optimizer updates both discriminators on the fakes of that generator update (each Adversary draws
    them through its own replay pool when ``tricks.replay_size`` is set: CycleGAN's history of 50).

    The seed's losses: ``D`` fits MSE to 1 (real) / 0 (fake) averaged over real and fake (``lsgan``'s
    discriminator loss), ``G`` fits MSE(D(fake), 1), twice ``lsgan``'s generator loss ``0.5 (f - 1)^2``:
    hence ``adv_weight = 2``. Seed 002 trains its ``Dx`` (here ``D_A``) on real A against ``Dy``'s
    fakes by a typo; here each discriminator sees its own domain's fakes, as in the paper.
    """

    players = {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")}
    update_order = ("G", "D")

    def __init__(
        self,
        g_ab: nn.Module,
        g_ba: nn.Module,
        d_a: nn.Module,
        d_b: nn.Module,
        config: dict,
        *,
        adv_weight: float = 2.0,
        cycle_weight: float = 10.0,
        identity_weight: float = 1.0,
    ):
        super().__init__()
        self.G_AB, self.G_BA = g_ab, g_ba
        self.D_A, self.D_B = Adversary.from_config(d_a, config), Adversary.from_config(d_b, config)
        self.adv_weight, self.cycle_weight, self.identity_weight = adv_weight, cycle_weight, identity_weight
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None

    def generator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        real_a, real_b = batch["a"], batch["b"]
        fake_b, fake_a = self.G_AB(real_a), self.G_BA(real_b)
        adv = self.D_B.generator_loss(fake_b, ctx) + self.D_A.generator_loss(fake_a, ctx)
        cycle = (self.G_BA(fake_b) - real_a).abs().mean() + (self.G_AB(fake_a) - real_b).abs().mean()
        total = self.adv_weight * adv + self.cycle_weight * cycle
        parts = {"adv": adv.detach(), "cycle": cycle.detach()}
        if self.identity_weight:
            identity = (self.G_BA(real_a) - real_a).abs().mean() + (self.G_AB(real_b) - real_b).abs().mean()
            total = total + self.identity_weight * identity
            parts["identity"] = identity.detach()
        self._fakes = (fake_a.detach(), fake_b.detach())
        return LossTerms(total, parts)

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        if self._fakes is None:
            raise RuntimeError("CycleGANModel: the D update needs the fakes of a G update first")
        fake_a, fake_b = self._fakes
        loss_a = self.D_A.discriminator_loss(batch["a"], fake_a, ctx)
        loss_b = self.D_B.discriminator_loss(batch["b"], fake_b, ctx)
        parts = {f"A/{k}": v for k, v in loss_a.parts.items()}
        parts.update({f"B/{k}": v for k, v in loss_b.parts.items()})
        return LossTerms(loss_a.total + loss_b.total, parts)

    def preview_inputs(self, dataset, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` training items at random."""
        items = [dataset[i] for i in torch.randperm(len(dataset), generator=generator)[:n].tolist()]
        return {key: torch.stack([item[key] for item in items]) for key in ("a", "b")}

    def preview(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows of a | G_AB(a) | G_BA(G_AB(a)) | b | G_BA(b) | G_AB(G_BA(b)) (the seed's sample grid)."""
        a, b = inputs["a"], inputs["b"]
        fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        row = [a, fake_b, self.G_BA(fake_b), b, fake_a, self.G_AB(fake_a)]
        return torch.stack([x.float().clamp(-1.0, 1.0) for x in row], dim=1).flatten(0, 1)

    def grid_columns(self, n: int) -> int:
        return 6

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise refuse_sampling("cyclegan", "images between two domains", "mnist2mnistm (or apple2orange)")


@register_model("cyclegan", "CycleGAN: U-Net generators, PatchGAN discriminators, LSGAN + cycle (seed 002)")
def build_cyclegan(
    config: dict,
    *,
    channels: int = 3,
    gf: int = 32,
    df: int = 64,
    norm: str = "keras_contrib",
    adv_weight: float = 2.0,
    cycle_weight: float = 10.0,
    identity_weight: float = 1.0,
) -> GANModel:
    """Seed 002's CycleGAN: two :class:`UNetGenerator` (``gf``), two :class:`PatchDiscriminator` (``df``),
    ``norm`` ``keras_contrib`` (the seed's) or ``instance``; loss weights as in :class:`CycleGANModel`
    (seed: lambda_cycle 10, lambda_identity 0.1 * 10)."""
    if norm not in NORMS:
        raise ConfigError(f"model.norm must be one of {', '.join(NORMS)}, got {norm!r}")
    dropout = config["tricks"]["d_dropout"]
    return CycleGANModel(
        UNetGenerator(channels, gf, norm),
        UNetGenerator(channels, gf, norm),
        PatchDiscriminator(channels, df, norm, dropout),
        PatchDiscriminator(channels, df, norm, dropout),
        config,
        adv_weight=adv_weight,
        cycle_weight=cycle_weight,
        identity_weight=identity_weight,
    )
