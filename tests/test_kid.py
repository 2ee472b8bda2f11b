"""KID: against torchmetrics' MMD helpers, a float64 brute force, and the Gaussian population value."""

import itertools

import numpy as np
import pytest
import torch
from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd

from ganbench.errors import FeatureMismatchError, NonFiniteImageError, SampleSizeWarning, TooFewSamplesError
from ganbench.metrics.kid import kernel_inception_distance, polynomial_mmd2


def features(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64) + shift


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)^3, one kernel value at a time."""
    m, d = x.shape
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2 * across / (m * m)


def test_mmd2_matches_torchmetrics_and_brute_force():
    x, y = features(15, 6, 0), features(15, 6, 1, shift=0.4)
    ours = float(polynomial_mmd2(x, y))
    assert ours == pytest.approx(float(poly_mmd(x, y)), rel=1e-12)  # torchmetrics, float64 input
    assert ours == pytest.approx(brute_force_mmd2(x.numpy(), y.numpy()), rel=1e-12)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_kid_matches_torchmetrics_kernel_inception_distance():
    real, fake = features(300, 8, 2), features(250, 8, 3, shift=0.2)
    result = kernel_inception_distance(real, fake, num_subsets=7, subset_size=50, seed=11)
    reference = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=7, subset_size=50)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    torch.manual_seed(11)  # torchmetrics draws its subsets from the global generator
    tm_mean, tm_std = reference.compute()
    assert result["kid_mean"] == pytest.approx(float(tm_mean), rel=1e-12)
    assert result["kid_std"] == pytest.approx(float(tm_std), rel=1e-10)  # both ddof=0
    counts = (result["n_real"], result["n_fake"], result["subset_size"], result["num_subsets"])
    assert counts == (300, 250, 50, 7)


def test_kid_estimates_the_population_mmd_of_two_gaussians():
    # x ~ N(0, I), y ~ N(b, I) in d dims: E k(u, v) for independent u ~ N(p, I), v ~ N(q, I) is
    # 1 + 3 E[t] + 3 E[t^2] + E[t^3] with t = u·v/d and E[u·v] = p·q,
    # E[(u·v)^2] = (p·q)^2 + |p|^2 + |q|^2 + d,
    # E[(u·v)^3] = (p·q)^3 + 3 (p·q)(|p|^2 + |q|^2) + (3d + 6) p·q.
    d = 4
    b = np.full(d, 1.0)

    def expected_kernel(p, q):
        pq, pp, qq = p @ q, p @ p, q @ q
        second = pq**2 + pp + qq + d
        third = pq**3 + 3 * pq * (pp + qq) + (3 * d + 6) * pq
        return 1 + 3 * pq / d + 3 * second / d**2 + third / d**3

    zero = np.zeros(d)
    population = expected_kernel(zero, zero) + expected_kernel(b, b) - 2 * expected_kernel(zero, b)  # 9.625
    shifted = kernel_inception_distance(
        features(4000, d, 4), features(4000, d, 5) + torch.from_numpy(b), num_subsets=10, subset_size=1000
    )
    # sampling noise of 4000 samples: about 3% (std over data seeds), so 15% is 5 sigma
    assert shifted["kid_mean"] == pytest.approx(population, rel=0.15)
    same = kernel_inception_distance(
        features(4000, d, 6), features(4000, d, 7), num_subsets=10, subset_size=1000
    )
    assert abs(same["kid_mean"]) < 0.02  # unbiased: about 0 +- 0.004 for one distribution


def test_kid_is_seedable_and_caps_the_subset_size():
    real, fake = features(40, 5, 8), features(60, 5, 9, shift=0.3)
    first = kernel_inception_distance(real, fake, num_subsets=5, seed=3)
    assert first == kernel_inception_distance(real, fake, num_subsets=5, seed=3)
    assert first["kid_mean"] != kernel_inception_distance(real, fake, num_subsets=5, seed=4)["kid_mean"]
    assert first["subset_size"] == 40  # the default 1000 is capped at the smaller set


def test_kid_float32_features_are_computed_in_float64():
    real, fake = features(200, 16, 10), features(200, 16, 11, shift=0.1)
    as_64 = kernel_inception_distance(
        real.float().double(), fake.float().double(), num_subsets=3, subset_size=100
    )
    as_32 = kernel_inception_distance(real.float(), fake.float(), num_subsets=3, subset_size=100)
    assert as_32["kid_mean"] == pytest.approx(as_64["kid_mean"], rel=1e-12)


def test_kid_input_errors():
    real = features(50, 8, 12)
    with pytest.raises(TooFewSamplesError):
        kernel_inception_distance(real, real[:1])
    with pytest.raises(FeatureMismatchError):
        kernel_inception_distance(real, real[:, :4])
    bad = real.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(NonFiniteImageError, match="fake features"):
        kernel_inception_distance(real, bad)
    with pytest.warns(SampleSizeWarning, match="KID"):
        kernel_inception_distance(real[:6], real[6:12], num_subsets=2)
    with pytest.raises(ValueError):
        kernel_inception_distance(real, real, subset_size=1)
