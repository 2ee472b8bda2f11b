"""Family 1 of the engine: GANs that map noise (and, if conditional, a class label) to images."""

import torch
from torch import nn

from reference_models.engine import Adversary, GANModel, LossTerms, StepContext
from ganbench.errors import ConfigError

__all__ = ["NoiseToImageModel", "NOISE_KINDS"]

NOISE_KINDS = ("normal", "uniform")


class NoiseToImageModel(GANModel):
    """``G(z[, y]) -> image``, ``D(image[, y]) -> score``, trained with one :class:`Adversary`.

    Batches are ``{"image": (N, C, H, W) in [-1, 1], "label": (N,)}``. The fakes of a step are made
    from fresh noise and, for a conditional model, the labels of the real batch (so real and fake
    labels follow the same distribution, as in seed 003's cGAN training loop).

    Args:
        generator: ``G(z)`` or, conditional, ``G(z, labels)``.
        discriminator: ``D(x)`` or ``D(x, labels)`` returning raw scores.
        config: the full config (its ``[loss]`` and ``[tricks]`` configure the Adversary).
        latent_dim: size of ``z``.
        noise: ``"normal"`` (N(0, 1), seed 000) or ``"uniform"`` (U(-1, 1), seed 001).
        num_classes: 0 for an unconditional model.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: dict,
        *,
        latent_dim: int,
        noise: str = "normal",
        num_classes: int = 0,
    ):
        super().__init__()
        if noise not in NOISE_KINDS:
            raise ConfigError(f"model.noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
        self.G = generator
        self.D = Adversary.from_config(discriminator, config)
        self.latent_dim, self.noise_kind, self.num_classes = latent_dim, noise, num_classes

    def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` latent vectors on the CPU."""
        if self.noise_kind == "normal":
            return torch.randn(n, self.latent_dim, generator=generator)
        return torch.rand(n, self.latent_dim, generator=generator) * 2.0 - 1.0

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``G(z)`` or ``G(z, labels)``."""
        return self.G(z) if not self.num_classes else self.G(z, labels)

    def _labels(self, batch: dict) -> torch.Tensor | None:
        return batch["label"] if self.num_classes else None

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        real, labels = batch["image"], self._labels(batch)
        with torch.no_grad():
            fake = self.generate(self.latent(real.shape[0], ctx.generator).to(ctx.device), labels)
        return self.D.discriminator_loss(real, fake, ctx, real_cond=labels, fake_cond=labels)

    def generator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        labels = self._labels(batch)
        fake = self.generate(self.latent(batch["image"].shape[0], ctx.generator).to(ctx.device), labels)
        adv = self.D.generator_loss(fake, ctx, cond=labels)
        return LossTerms(adv, {"adv": adv.detach()})

    def _grid_labels(self, n: int) -> torch.Tensor | None:
        """Labels ``0, 1, ..., C-1, 0, 1, ...``: with C columns, each column is one class."""
        return torch.arange(n) % self.num_classes if self.num_classes else None

    def preview_inputs(self, dataset, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs = {"z": self.latent(n, generator)}
        if self.num_classes:
            inputs["label"] = self._grid_labels(n)
        return inputs

    def preview(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generate(inputs["z"], inputs.get("label"))

    def grid_columns(self, n: int) -> int:
        return self.num_classes or super().grid_columns(n)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        device = next(self.parameters()).device
        labels = self._grid_labels(n)
        return self.generate(
            self.latent(n, generator).to(device), None if labels is None else labels.to(device)
        )
