"""The vanilla GAN of Goodfellow et al. (2014) on MNIST, as in seed 000 (Keras).

* :class:`MLPGenerator`: ``Dense 256 -> LeakyReLU(0.2) -> BatchNorm``, the same with 512 and 1024,
  ``Dense 784 -> tanh``, reshaped to ``(1, 28, 28)``; z ~ N(0, 1)^100. 1,493,520 parameters of which
  1,489,936 trainable, as in the seed's Keras summary. Keras ``BatchNormalization(momentum=0.8)`` keeps
  80 % of the old moving average, i.e. PyTorch ``momentum=0.2``; Keras' epsilon is 1e-3.
* :class:`MLPDiscriminator`: ``Flatten -> Dense 512 -> LeakyReLU(0.2) -> Dense 256 -> LeakyReLU(0.2)
  -> Dense 1``; 533,505 parameters. It returns logits: the seed's sigmoid is inside the loss
  (``nonsaturating`` = Keras' binary cross-entropy on sigmoid outputs).

Training as in the seed (``configs/gan/paper.toml``): Adam(2e-4, beta1 0.5, Keras epsilon 1e-7) for
both networks, batch 128, 30,000 iterations of one D and one G update, Glorot-uniform initialisation
(Keras' default). Two Keras details are not copied: the seed updates D twice per iteration (once on the
real, once on the fake batch, with separate ``train_on_batch`` calls), here once on the sum of both
losses (the formulation of seed 003); and Keras' ``predict`` makes D's fakes with G's BatchNorm in
inference mode, here G stays in training mode.
"""

import math

from torch import nn

from reference_models.engine import GANModel
from reference_models.image_gan import NoiseToImageModel
from reference_models.registry import register_model

__all__ = ["MLPGenerator", "MLPDiscriminator", "build_gan"]

IMAGE_SHAPE = (1, 28, 28)


class MLPGenerator(nn.Module):
    """``z (N, latent_dim)`` -> images ``(N, 1, 28, 28)`` in ``[-1, 1]``."""

    def __init__(self, latent_dim: int = 100, hidden=(256, 512, 1024), image_shape=IMAGE_SHAPE):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for size in hidden:
            layers += [
                nn.Linear(width, size),
                nn.LeakyReLU(0.2),
                nn.BatchNorm1d(size, momentum=0.2, eps=1e-3),
            ]
            width = size
        layers += [nn.Linear(width, math.prod(self.image_shape)), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Images ``(N, 1, 28, 28)`` -> logits ``(N, 1)``; ``dropout`` after each activation if > 0."""

    def __init__(self, hidden=(512, 256), image_shape=IMAGE_SHAPE, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


@register_model("gan", "Vanilla MLP GAN of Goodfellow et al. 2014 on MNIST (seed 000, Keras)")
def build_gan(
    config: dict,
    *,
    latent_dim: int = 100,
    noise: str = "normal",
    g_hidden=(256, 512, 1024),
    d_hidden=(512, 256),
) -> GANModel:
    """The seed-000 GAN; ``g_hidden`` / ``d_hidden`` are the hidden layer widths."""
    return NoiseToImageModel(
        MLPGenerator(latent_dim, tuple(g_hidden)),
        MLPDiscriminator(tuple(d_hidden), dropout=config["tricks"]["d_dropout"]),
        config,
        latent_dim=latent_dim,
        noise=noise,
    )
