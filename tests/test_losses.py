"""Adversarial losses against hand computations in float64 (math module), and the gradient penalty."""

import math

import pytest
import torch

from ganbench.errors import ConfigError
from reference_models.losses import LOSSES, build_loss, gradient_penalty

REAL = [0.5, 2.0, -1.0]  # D outputs on real inputs
FAKE = [-0.5, 1.5, -3.0]  # D outputs on fake inputs


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def bce(logits, target: float) -> float:
    """Binary cross-entropy of logits against a constant target, by hand."""
    terms = [-(target * math.log(sigmoid(x)) + (1 - target) * math.log(1 - sigmoid(x))) for x in logits]
    return sum(terms) / len(terms)


def mean(values) -> float:
    return sum(values) / len(values)


def losses(name: str, real_target: float = 1.0, **options) -> tuple[float, float]:
    loss = build_loss(name, **options)
    d = loss.discriminator(torch.tensor(REAL), torch.tensor(FAKE), real_target)
    g = loss.generator(torch.tensor(FAKE))
    return float(d), float(g)


@pytest.mark.parametrize(
    ("name", "expected_d", "expected_g"),
    [
        ("minimax", bce(REAL, 1) + bce(FAKE, 0), mean([math.log(1 - sigmoid(f)) for f in FAKE])),
        ("nonsaturating", bce(REAL, 1) + bce(FAKE, 0), mean([-math.log(sigmoid(f)) for f in FAKE])),
        (
            "lsgan",
            0.5 * mean([(r - 1) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE]),
            0.5 * mean([(f - 1) ** 2 for f in FAKE]),
        ),
        ("wgan", mean(FAKE) - mean(REAL), -mean(FAKE)),
        ("wgan-gp", mean(FAKE) - mean(REAL), -mean(FAKE)),
        (
            "hinge",
            mean([max(0, 1 - r) for r in REAL]) + mean([max(0, 1 + f) for f in FAKE]),
            -mean(FAKE),
        ),
    ],
)
def test_loss_values_match_hand_computation(name, expected_d, expected_g):
    d, g = losses(name)
    assert d == pytest.approx(expected_d, rel=1e-6, abs=1e-6)
    assert g == pytest.approx(expected_g, rel=1e-6, abs=1e-6)


def test_registry_holds_the_six_losses():
    assert sorted(LOSSES) == sorted(["minimax", "nonsaturating", "lsgan", "wgan", "wgan-gp", "hinge"])
    with pytest.raises(ConfigError, match="unknown loss 'wasserstein'"):
        build_loss("wasserstein")
    with pytest.raises(ConfigError, match="does not take"):
        build_loss("hinge", clip=0.01)


def test_label_smoothing_target_enters_bce_and_lsgan():
    d, _ = losses("nonsaturating", real_target=0.9)
    assert d == pytest.approx(bce(REAL, 0.9) + bce(FAKE, 0), rel=1e-6)
    d, _ = losses("lsgan", real_target=0.9)
    assert d == pytest.approx(
        0.5 * mean([(r - 0.9) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE]), rel=1e-6
    )


def test_wgan_options():
    assert build_loss("wgan").weight_clip == 0.01
    assert build_loss("wgan", clip=0.05).weight_clip == 0.05
    assert build_loss("wgan-gp").gp_weight == 10.0 and build_loss("wgan-gp").weight_clip is None
    with pytest.raises(ConfigError):
        build_loss("wgan-gp", gp_weight=-1.0)


def test_minimax_generator_saturates_where_nonsaturating_does_not():
    """d/df of the G loss at f = -5 (D confident the fake is fake): -sigma(f) vs -sigma(-f)."""
    f = torch.tensor([-5.0], requires_grad=True)
    (grad_minimax,) = torch.autograd.grad(build_loss("minimax").generator(f), f)
    (grad_nonsat,) = torch.autograd.grad(build_loss("nonsaturating").generator(f), f)
    assert float(grad_minimax) == pytest.approx(-sigmoid(-5.0), rel=1e-5)  # -0.0067
    assert float(grad_nonsat) == pytest.approx(-sigmoid(5.0), rel=1e-5)  # -0.9933


def test_gradient_penalty_of_a_linear_critic_is_exact():
    """For D(x) = <w, x> the gradient is w everywhere: the penalty is (||w|| - 1)^2."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    epsilon = torch.rand(5, 1, 1, 1, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, epsilon)
    assert float(gp.detach()) == pytest.approx((math.sqrt(float((w**2).sum())) - 1.0) ** 2, rel=1e-12)


def test_gradient_penalty_uses_the_interpolates():
    """For D(x) = sum(x^2)/2 the gradient is x_hat, so the penalty is mean (||x_hat|| - 1)^2."""
    real = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    fake = torch.tensor([[0.0, 4.0]], dtype=torch.float64)
    epsilon = torch.tensor([[0.25]], dtype=torch.float64)
    gp = gradient_penalty(lambda x: 0.5 * (x**2).sum(1), real, fake, epsilon)
    x_hat = (0.75, 3.0)  # 0.25 * real + 0.75 * fake
    assert float(gp.detach()) == pytest.approx((math.hypot(*x_hat) - 1.0) ** 2, rel=1e-12)
