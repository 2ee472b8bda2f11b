"""Inception Score: against an independent scipy float64 computation, torchmetrics, and closed forms."""

import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import entropy
from torchmetrics.image.inception import InceptionScore as TorchmetricsInceptionScore

from ganbench.errors import NonFiniteImageError, SampleSizeWarning, TooFewSamplesError
from ganbench.metrics.inception_score import inception_score


def logits(n: int, classes: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=g, dtype=torch.float64) * scale


def scipy_inception_score(x: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al.'s procedure: per contiguous split, exp(mean_i KL(p_i || mean p)); population std."""
    probs = softmax(x, axis=1)
    scores = []
    for part in np.array_split(probs, splits):  # equal splits when splits divides N
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean([entropy(p, marginal) for p in part])))
    return float(np.mean(scores)), float(np.std(scores))


def test_matches_independent_scipy_computation():
    x = logits(500, 10, 0)
    ours = inception_score(x, splits=10, seed=None)
    mean, std = scipy_inception_score(x.numpy(), 10)
    assert ours["is_mean"] == pytest.approx(mean, rel=1e-12)
    assert ours["is_std"] == pytest.approx(std, rel=1e-9)
    assert ours["n"] == 500


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save all extracted features")
def test_matches_torchmetrics_up_to_its_std_convention():
    x = logits(600, 12, 1)
    reference = TorchmetricsInceptionScore(feature=torch.nn.Identity(), splits=6)
    reference.update(x)
    torch.manual_seed(5)  # torchmetrics shuffles with the global generator: the same permutation as seed=5
    tm_mean, tm_std = reference.compute()
    ours = inception_score(x, splits=6, seed=5)
    assert ours["is_mean"] == pytest.approx(float(tm_mean), rel=1e-12)
    # torchmetrics: torch.std (ddof=1); ours: ddof=0 like the original code and torch-fidelity
    assert ours["is_std"] * np.sqrt(6 / 5) == pytest.approx(float(tm_std), rel=1e-9)


def test_closed_forms():
    assert inception_score(torch.zeros(200, 7), splits=4)["is_mean"] == pytest.approx(1.0, abs=1e-14)
    # certain predictions, every split holds each of 5 classes equally often: IS = 5 exactly
    confident = 60.0 * torch.nn.functional.one_hot(torch.arange(500) % 5, 5).double()
    result = inception_score(confident, splits=5, seed=None)
    assert result["is_mean"] == pytest.approx(5.0, rel=1e-12)
    assert result["is_std"] < 1e-12


def test_shuffling_protects_class_ordered_samples():
    ordered = 60.0 * torch.nn.functional.one_hot(torch.arange(1000) // 100, 10).double()
    assert inception_score(ordered, splits=10, seed=None)["is_mean"] == pytest.approx(1.0, rel=1e-12)
    assert inception_score(ordered, splits=10, seed=0)["is_mean"] > 9.0


def test_seed_and_float32_input():
    x = logits(300, 10, 2)
    assert inception_score(x, seed=1) == inception_score(x, seed=1)
    assert inception_score(x, seed=1)["is_mean"] != inception_score(x, seed=2)["is_mean"]
    assert inception_score(x.float(), seed=1)["is_mean"] == pytest.approx(
        inception_score(x.float().double(), seed=1)["is_mean"], rel=1e-14
    )


def test_input_errors():
    with pytest.raises(TooFewSamplesError):
        inception_score(logits(9, 10, 3), splits=10)
    bad = logits(100, 10, 4)
    bad[5, 2] = float("nan")
    with pytest.raises(NonFiniteImageError, match="logits"):
        inception_score(bad)
    with pytest.warns(SampleSizeWarning, match="splits of 5 samples for 10 classes"):
        inception_score(logits(50, 10, 5), splits=10)
    with pytest.raises(ValueError):
        inception_score(logits(50, 10, 5), splits=0)
