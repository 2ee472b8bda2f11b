"""DCGAN on MNIST / Fashion-MNIST, as in seed 001 (TensorFlow 1, ``tf.layers`` + ``tf.contrib``).

* :class:`DCGANGenerator`: ``Dense 3*3*512 -> BN -> ReLU``, then 5x5 stride-2 transposed convolutions
  with 256, 128 and 64 filters, each ``-> BN -> ReLU`` (3 -> 6 -> 12 -> 24 pixels), then a 5x5
  stride-1 "valid" transposed convolution to 1 channel (24 + 5 - 1 = 28) and tanh; z ~ U(-1, 1)^100.
* :class:`DCGANDiscriminator`: 5x5 stride-2 convolutions with 64, 128, 256, 512 filters (28 -> 14 ->
  7 -> 4 -> 2), BN on all but the first, LeakyReLU(0.2) after each, then ``Dense 1`` (logits).

Framework translation: TF's ``padding='same'`` stride-2 transposed 5x5 convolution doubles the size;
in PyTorch that is ``padding=2, output_padding=1`` and the strided 5x5 convolutions use
``padding=2`` (same output sizes; TF puts the odd padding pixel at the bottom/right, so the sampling
grid is offset by one pixel, which changes no capacity). ``tf.contrib.layers.batch_norm(decay=0.9)``
is PyTorch ``momentum=0.1`` with epsilon 1e-3, and it has no scale (``scale=False``): gamma is fixed
at 1 here (a frozen parameter). TF layers start Glorot-uniform with zero biases (``tricks.init =
"xavier"``). ``width`` scales every filter count (64 in the seed: 512/256/128/64).

Training as in the seed (``configs/dcgan/paper.toml``): batch 100, Adam(2e-4, beta1 0.5), the
sigmoid cross-entropy losses (``nonsaturating``), two G updates per D update (``train.n_gen = 2``),
60,000 iterations. The seed reuses one noise batch for the D update and both G updates; here each
update draws fresh noise.
"""

from torch import nn

from reference_models.engine import GANModel
from reference_models.image_gan import NoiseToImageModel
from reference_models.registry import register_model

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "tf_batch_norm", "build_dcgan"]


def tf_batch_norm(channels: int) -> nn.BatchNorm2d:
    """``tf.contrib.layers.batch_norm(decay=0.9)``: momentum 0.1, epsilon 1e-3, no scale (gamma = 1)."""
    norm = nn.BatchNorm2d(channels, momentum=0.1, eps=1e-3)
    norm.weight.requires_grad_(False)
    return norm


class DCGANGenerator(nn.Module):
    """``z (N, latent_dim)`` -> images ``(N, 1, 28, 28)`` in ``[-1, 1]``."""

    def __init__(self, latent_dim: int = 100, width: int = 64):
        super().__init__()
        self.base = 8 * width
        self.project = nn.Linear(latent_dim, 3 * 3 * self.base)
        layers: list[nn.Module] = [tf_batch_norm(self.base), nn.ReLU()]
        channels = self.base
        for out in (4 * width, 2 * width, width):
            layers += [
                nn.ConvTranspose2d(channels, out, 5, stride=2, padding=2, output_padding=1),
                tf_batch_norm(out),
                nn.ReLU(),
            ]
            channels = out
        layers += [nn.ConvTranspose2d(channels, 1, 5, stride=1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(self.project(z).view(z.shape[0], self.base, 3, 3))


class DCGANDiscriminator(nn.Module):
    """Images ``(N, 1, 28, 28)`` -> logits ``(N, 1)``; ``dropout`` after each activation if > 0."""

    def __init__(self, width: int = 64, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for i, out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            layers.append(nn.Conv2d(channels, out, 5, stride=2, padding=2))
            if i > 0:
                layers.append(tf_batch_norm(out))
            layers.append(nn.LeakyReLU(0.2))
            if dropout:
                layers.append(nn.Dropout(dropout))
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * 2 * 2, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


@register_model("dcgan", "DCGAN on MNIST / Fashion-MNIST (seed 001, TensorFlow)")
def build_dcgan(config: dict, *, latent_dim: int = 100, noise: str = "uniform", width: int = 64) -> GANModel:
    """The seed-001 DCGAN; ``width`` is the filter count of G's last / D's first layer (64)."""
    return NoiseToImageModel(
        DCGANGenerator(latent_dim, width),
        DCGANDiscriminator(width, dropout=config["tricks"]["d_dropout"]),
        config,
        latent_dim=latent_dim,
        noise=noise,
    )
