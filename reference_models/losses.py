"""Adversarial losses, chosen by name: minimax, non-saturating, LSGAN, WGAN, WGAN-GP, hinge.

Each loss takes the discriminator's raw outputs (logits for the probabilistic losses, critic values
for WGAN and hinge), of any shape, and averages over all elements (so PatchGAN maps work). Losses are
computed in float32 whatever the autocast dtype. With ``r = D(x)`` on real and ``f = D(G(z))`` on
fake inputs, ``sigma`` the logistic function and ``t`` the real target (1, or ``1 - label_smoothing``):

============== ======================================================= =================================
name           discriminator loss                                      generator loss
============== ======================================================= =================================
minimax        BCE(r, t) + BCE(f, 0)                                   mean log(1 - sigma(f))   (saturates)
nonsaturating  BCE(r, t) + BCE(f, 0)                                   BCE(f, 1) = -mean log sigma(f)
lsgan          0.5 mean (r - t)^2 + 0.5 mean f^2                       0.5 mean (f - 1)^2   (Mao et al.)
wgan           mean f - mean r; weights clipped to [-clip, clip]        -mean f
wgan-gp        mean f - mean r + gp_weight * gradient penalty          -mean f
hinge          mean relu(1 - r) + mean relu(1 + f)                     -mean f
============== ======================================================= =================================

``BCE(x, y) = mean(-y log sigma(x) - (1 - y) log(1 - sigma(x)))``. Options: ``wgan`` takes ``clip``
(0.01), ``wgan-gp`` takes ``gp_weight`` (10). The WGAN recipe's RMSprop(5e-5) and 5 critic steps are
set in the config's ``[optim.D]`` and ``train.n_critic``.
"""

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

from ganbench.errors import ConfigError

__all__ = ["AdversarialLoss", "LOSSES", "build_loss", "gradient_penalty"]


class AdversarialLoss(ABC):
    """Base class: a discriminator loss and a generator loss on D's raw outputs.

    Attributes:
        name: registry name.
        uses_targets: whether the loss has a real target that label smoothing can lower.
        weight_clip: WGAN's clipping bound of the discriminator's weights (``None``: no clipping).
        gp_weight: weight of the gradient penalty (0: none).
    """

    name = ""
    uses_targets = False
    weight_clip: float | None = None
    gp_weight = 0.0

    @abstractmethod
    def discriminator(self, real_out: torch.Tensor, fake_out: torch.Tensor, real_target: float = 1.0):
        """Loss the discriminator minimises (without the gradient penalty)."""

    @abstractmethod
    def generator(self, fake_out: torch.Tensor) -> torch.Tensor:
        """Loss the generator minimises."""


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class Minimax(AdversarialLoss):
    """Goodfellow et al.'s min-max game: G minimises ``E log(1 - D(G(z)))``."""

    name = "minimax"
    uses_targets = True

    def discriminator(self, real_out, fake_out, real_target=1.0):
        return _bce(real_out, real_target) + _bce(fake_out, 0.0)

    def generator(self, fake_out):
        return -F.softplus(fake_out.float()).mean()  # log(1 - sigma(f)) = -softplus(f)


class NonSaturating(Minimax):
    """The practical GAN loss: G maximises ``E log D(G(z))`` (binary cross-entropy against 1)."""

    name = "nonsaturating"

    def generator(self, fake_out):
        return _bce(fake_out, 1.0)


class LeastSquares(AdversarialLoss):
    """LSGAN (Mao et al. 2017, a=0, b=1, c=1) with the 1/2 factors of the paper."""

    name = "lsgan"
    uses_targets = True

    def discriminator(self, real_out, fake_out, real_target=1.0):
        return 0.5 * (real_out.float() - real_target).square().mean() + 0.5 * fake_out.float().square().mean()

    def generator(self, fake_out):
        return 0.5 * (fake_out.float() - 1.0).square().mean()


class Wasserstein(AdversarialLoss):
    """WGAN (Arjovsky et al. 2017): critic difference, weights clipped after every critic update."""

    name = "wgan"

    def __init__(self, clip: float = 0.01):
        if not clip > 0:
            raise ConfigError(f"loss.clip must be positive, got {clip}")
        self.weight_clip = float(clip)

    def discriminator(self, real_out, fake_out, real_target=1.0):
        return fake_out.float().mean() - real_out.float().mean()

    def generator(self, fake_out):
        return -fake_out.float().mean()


class WassersteinGP(Wasserstein):
    """WGAN-GP (Gulrajani et al. 2017): no clipping, ``gp_weight * E (||grad D(x_hat)|| - 1)^2``."""

    name = "wgan-gp"

    def __init__(self, gp_weight: float = 10.0):
        if not gp_weight > 0:
            raise ConfigError(f"loss.gp_weight must be positive, got {gp_weight}")
        self.weight_clip = None
        self.gp_weight = float(gp_weight)


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN)."""

    name = "hinge"

    def discriminator(self, real_out, fake_out, real_target=1.0):
        return F.relu(1.0 - real_out.float()).mean() + F.relu(1.0 + fake_out.float()).mean()

    def generator(self, fake_out):
        return -fake_out.float().mean()


LOSSES: dict[str, type[AdversarialLoss]] = {
    cls.name: cls for cls in (Minimax, NonSaturating, LeastSquares, Wasserstein, WassersteinGP, Hinge)
}


def build_loss(name: str, **options) -> AdversarialLoss:
    """The loss registered as ``name`` with its options; :class:`ConfigError` for unknown ones."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})")
    try:
        return LOSSES[name](**options)
    except TypeError:
        raise ConfigError(f"loss {name!r} does not take option(s) {sorted(options)}") from None


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's ``mean over samples of (||grad_x critic(x_hat)||_2 - 1)^2``.

    ``x_hat = epsilon * real + (1 - epsilon) * fake`` with ``epsilon`` of shape ``(N, 1, ..., 1)`` (draw
    it uniform in [0, 1]); ``critic`` is a callable of one tensor. The graph is kept so the penalty
    can be back-propagated into the critic's weights.
    """
    x_hat = (epsilon * real.detach() + (1.0 - epsilon) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
