"""Conditional GAN on MNIST / Fashion-MNIST, as in seed 003 (Keras).

* :class:`ConditionalGenerator` (the seed's ``build_generator``): ``Embedding(10, latent_dim)`` of the
  label joined to the noise z ~ N(0, 1)^100, ``Dense 128*7*7 -> ReLU``, reshaped to ``(128, 7, 7)``,
  3x3 stride-2 "same" transposed convolutions with 128 and 64 filters and ReLU (7 -> 14 -> 28), and a
  3x3 stride-1 transposed convolution to 1 channel with tanh.
* :class:`ConditionalDiscriminator` (the seed only says "built alike, also taking the label"): the
  label's ``Embedding(10, 28*28)`` becomes a second image channel; 3x3 stride-2 "same" convolutions
  with 64 and 128 filters, each with LeakyReLU(0.2) (28 -> 14 -> 7), then ``Dense 1`` (logits).

Keras details: "same" padding of the stride-2 3x3 (transposed) convolutions is PyTorch ``padding=1``
(+ ``output_padding=1`` for the transposed ones), same sizes with a one-pixel grid offset; Keras'
``Embedding`` starts uniform in [-0.05, 0.05] and its kernels Glorot-uniform (``tricks.init =
"xavier"``). ``width`` scales the filter counts (64: G 128/128/64, D 64/128).

Training (``configs/cgan/paper.toml``): the seed's loop draws a real batch and its labels, makes fakes
for those labels, trains D with binary cross-entropy and then G through the frozen D on new noise and
the same labels; Adam(2e-4, beta1 0.5) (the series' rate; the seed's cGAN fragment compiles with
Keras' default Adam), batch 128, 10,000 iterations.
"""

import torch
from torch import nn

from reference_models.engine import GANModel
from reference_models.image_gan import NoiseToImageModel
from reference_models.registry import register_model

__all__ = ["ConditionalGenerator", "ConditionalDiscriminator", "build_cgan"]


def _keras_embedding(num_classes: int, dim: int) -> nn.Embedding:
    embedding = nn.Embedding(num_classes, dim)
    nn.init.uniform_(embedding.weight, -0.05, 0.05)
    return embedding


class ConditionalGenerator(nn.Module):
    """``(z (N, latent_dim), labels (N,))`` -> images ``(N, 1, 28, 28)`` in ``[-1, 1]``."""

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.base = 2 * width
        self.embed = _keras_embedding(num_classes, latent_dim)
        self.project = nn.Sequential(nn.Linear(2 * latent_dim, self.base * 7 * 7), nn.ReLU())
        self.main = nn.Sequential(
            nn.ConvTranspose2d(self.base, 2 * width, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z, labels):
        joined = torch.cat([z, self.embed(labels)], dim=1)
        return self.main(self.project(joined).view(z.shape[0], self.base, 7, 7))


class ConditionalDiscriminator(nn.Module):
    """``(images (N, 1, 28, 28), labels (N,))`` -> logits ``(N, 1)``; ``dropout`` after each activation."""

    def __init__(self, num_classes: int = 10, width: int = 64, dropout: float = 0.0):
        super().__init__()
        self.embed = _keras_embedding(num_classes, 28 * 28)
        layers: list[nn.Module] = []
        channels = 2
        for out in (width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * 7 * 7, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x, labels):
        label_map = self.embed(labels).view(x.shape[0], 1, 28, 28).to(x.dtype)
        return self.main(torch.cat([x, label_map], dim=1))


@register_model("cgan", "Conditional GAN on MNIST / Fashion-MNIST (seed 003, Keras)")
def build_cgan(
    config: dict, *, latent_dim: int = 100, noise: str = "normal", num_classes: int = 10, width: int = 64
) -> GANModel:
    """The seed-003 cGAN; ``width`` scales the filter counts (64)."""
    return NoiseToImageModel(
        ConditionalGenerator(latent_dim, num_classes, width),
        ConditionalDiscriminator(num_classes, width, dropout=config["tricks"]["d_dropout"]),
        config,
        latent_dim=latent_dim,
        noise=noise,
        num_classes=num_classes,
    )
