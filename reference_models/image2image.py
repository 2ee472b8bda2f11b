"""Family 2 of the engine: paired image-to-image GANs with a content loss (SRResNet/SRGAN, DeblurGAN).

:class:`PairedImageModel` maps an input image to an output that a content loss (:class:`ContentLoss`)
compares with the paired target; with a discriminator it adds an adversarial loss (an
:class:`~reference_models.engine.Adversary`), without one it is content-only pre-training (SRResNet).
Batches hold the input and the target under the keys the data set uses (``{"lr", "hr"}`` of
``sr-crops``, ``{"blurred", "sharp"}`` of ``motion-blur``). The generator's output and the target are
in ``[-1, 1]``; the input may use another range (SRResNet's LR input is in ``[0, 1]``).

Content losses, chosen by ``[model] content``:

* ``pixel-mse``: the mean squared pixel error (SRResNet's "MSE", on ``[-1, 1]`` images as in the paper);
* ``pixel-l1``: the mean absolute pixel error;
* ``vgg``: :class:`ganbench.metrics.perceptual.PerceptualLoss`, the mean squared difference of VGG
  feature maps (``vgg_network``: SRGAN's "VGG54" is ``vgg19_relu5_4`` with ``vgg_feature_scale =
  1/12.75``, seed 004's ``block3_conv3`` is ``vgg16_relu3_3``). It needs ImageNet VGG weights
  (``vgg_weights = ""``: the default lookup, else a path); ``vgg_weights = "random"`` (untrained
  features, for tests) is taken only when a config says so.

The VGG network is built when the first loss is computed, not with the model: loading a trained
generator for evaluation never needs VGG weights, and the frozen VGG is not part of the checkpoints.
Without weights training stops at its first generator update with a :class:`WeightsNotFoundError` that
says how to get them or which pixel loss to use instead.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import ConfigError, WeightsNotFoundError
from reference_models.engine import Adversary, GANModel, LossTerms, StepContext

__all__ = ["CONTENT_LOSSES", "ContentLoss", "PairedImageModel", "refuse_sampling"]

CONTENT_LOSSES = ("pixel-mse", "pixel-l1", "vgg")


class ContentLoss:
    """``content(output, target)`` for images in ``[-1, 1]``, by name (see the module docstring).

    Args:
        name: one of :data:`CONTENT_LOSSES`.
        vgg_network: the VGG and layer of ``vgg`` (``vgg19_relu5_4``, ``vgg16_relu3_3``, ...).
        vgg_weights: ``""`` (default lookup), a file, or ``"random"`` (tests only).
        vgg_feature_scale: factor of the feature maps (SRGAN: 1/12.75).
    """

    def __init__(
        self,
        name: str,
        *,
        vgg_network: str = "vgg19_relu5_4",
        vgg_weights: str = "",
        vgg_feature_scale: float = 1.0,
    ):
        if name not in CONTENT_LOSSES:
            raise ConfigError(f"model.content must be one of {', '.join(CONTENT_LOSSES)}, got {name!r}")
        if name == "vgg":
            from ganbench.features.vgg import parse_network

            try:
                parse_network(vgg_network)
            except ValueError as exc:
                raise ConfigError(f"model.vgg_network: {exc}") from None
        self.name, self.vgg_network = name, vgg_network
        self.vgg_weights, self.vgg_feature_scale = vgg_weights, vgg_feature_scale
        self._perceptual: nn.Module | None = None

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.name == "pixel-mse":
            return (output.float() - target.float()).square().mean()
        if self.name == "pixel-l1":
            return (output.float() - target.float()).abs().mean()
        return self.perceptual(output.device)((output + 1.0) / 2.0, (target + 1.0) / 2.0)

    def perceptual(self, device: torch.device) -> nn.Module:
        """The frozen :class:`PerceptualLoss` on ``device``, built on first use."""
        if self._perceptual is None:
            from ganbench.metrics.perceptual import PerceptualLoss

            try:
                with torch.random.fork_rng(devices=[]):  # building VGG layers must not move the run's RNG
                    self._perceptual = PerceptualLoss(
                        self.vgg_network, self.vgg_weights or None, feature_scale=self.vgg_feature_scale
                    )
            except WeightsNotFoundError as exc:
                raise WeightsNotFoundError(
                    f"model.content = 'vgg' ({self.vgg_network}) needs ImageNet VGG weights: {exc}. "
                    "Without them train with a pixel content loss (--set model.content=pixel-mse or "
                    "pixel-l1, as the cpu configs do)"
                ) from None
        return self._perceptual.to(device)

    def __repr__(self) -> str:
        if self.name != "vgg":
            return f"ContentLoss({self.name!r})"
        return f"ContentLoss('vgg', {self.vgg_network!r}, scale={self.vgg_feature_scale:g})"


def refuse_sampling(model: str, what: str, task: str) -> ConfigError:
    """The error of ``ganbench sample`` for a model that translates images instead of sampling noise."""
    return ConfigError(
        f"{model} translates {what}; it cannot sample from noise. Its run folder's samples/ holds grids "
        f"of fixed inputs with their outputs; score it with `ganbench score CHECKPOINT --task {task}`"
    )


class PairedImageModel(GANModel):
    """``G(input) -> output`` against a paired target: content loss, plus an Adversary when ``D`` is given.

    Args:
        generator: ``G(input)`` returning images in ``[-1, 1]``.
        discriminator: ``D(image)`` returning raw scores, or ``None`` for content-only training (players
            ``G`` only, no ``[optim.D]``).
        config: the full config (its ``[loss]`` and ``[tricks]`` configure the Adversary).
        input_key, target_key: the batch keys of the input and the target.
        content: the content loss.
        content_weight, adv_weight: ``G``'s loss is ``content_weight * content + adv_weight * adv``.
        input_range: the value range of the input, to show it in the sample grids.
        name, task: the model's name and evaluation task, for messages.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        config: dict,
        *,
        input_key: str,
        target_key: str,
        content: ContentLoss,
        content_weight: float = 1.0,
        adv_weight: float = 1.0,
        input_range: tuple[float, float] = (-1.0, 1.0),
        name: str = "paired",
        task: str = "",
    ):
        super().__init__()
        self.G = generator
        if discriminator is None:
            self.players = {"G": ("G",)}
        else:
            self.D = Adversary.from_config(discriminator, config)
        self.input_key, self.target_key = input_key, target_key
        self.content, self.content_weight, self.adv_weight = content, content_weight, adv_weight
        self.input_range, self.name, self.task = input_range, name, task
        self._fake: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def _detached_output(self, batch: dict, ctx: StepContext) -> torch.Tensor:
        """``G(input)`` without gradient, computed once per step and batch (DeblurGAN's critic steps
        share one batch: its five updates see the same fakes, as in Kupyn et al.'s code)."""
        inputs = batch[self.input_key]
        if self._fake is None or self._fake[0] != ctx.step or self._fake[1] is not inputs:
            with torch.no_grad():
                self._fake = (ctx.step, inputs, self.G(inputs))
        return self._fake[2]

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        return self.D.discriminator_loss(batch[self.target_key], self._detached_output(batch, ctx), ctx)

    def generator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        self._fake = None
        output = self.G(batch[self.input_key])
        content = self.content(output, batch[self.target_key])
        total = self.content_weight * content
        parts = {"content": content.detach()}
        if "D" in self.players:
            adv = self.D.generator_loss(output, ctx)
            total = total + self.adv_weight * adv
            parts["adv"] = adv.detach()
        return LossTerms(total, parts)

    def preview_inputs(self, dataset, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` items of the training set at random (epoch 0's crops)."""
        picks = torch.randperm(len(dataset), generator=generator)[:n].tolist()
        items = [dataset[i] for i in picks]
        return {key: torch.stack([item[key] for item in items]) for key in (self.input_key, self.target_key)}

    def display_input(self, inputs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The inputs mapped to ``[-1, 1]`` and, if smaller, bicubic-upscaled to ``size`` (for grids)."""
        low, high = self.input_range
        shown = (inputs.float() - low) / (high - low) * 2.0 - 1.0
        if tuple(shown.shape[-2:]) != tuple(size):
            shown = F.interpolate(shown, size=size, mode="bicubic", align_corners=False)
        return shown.clamp(-1.0, 1.0)

    def preview(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows of input | output | target."""
        output = self.G(inputs[self.input_key]).float().clamp(-1.0, 1.0)
        target = inputs[self.target_key].float()
        shown = self.display_input(inputs[self.input_key], tuple(output.shape[-2:]))
        return torch.stack([shown, output, target], dim=1).flatten(0, 1)

    def grid_columns(self, n: int) -> int:
        return 3

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise refuse_sampling(self.name, f"{self.input_key} images", self.task)
