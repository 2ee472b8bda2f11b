"""Improved precision/recall: against a scipy cdist brute force and geometric cases with known answers."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from ganbench.errors import FeatureMismatchError, NonFiniteImageError, SampleSizeWarning, TooFewSamplesError
from ganbench.metrics.precision_recall import _row_blocks, knn_radii, precision_recall


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al.'s definition with full scipy distance matrices (Euclidean, float64)."""

    def radii(x):
        d = cdist(x, x)
        np.fill_diagonal(d, np.inf)  # the sample itself is not its own neighbour
        return np.sort(d, axis=1)[:, k - 1]

    cross = cdist(fake, real)  # (fake, real)
    precision = np.mean((cross <= radii(real)[None, :]).any(axis=1))
    recall = np.mean((cross <= radii(fake)[:, None]).any(axis=0))
    return float(precision), float(recall)


def points(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)) * scale + shift


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_cdist_brute_force(k):
    real, fake = points(400, 10, 0), points(300, 10, 1, shift=0.3, scale=1.3)
    result = precision_recall(real, fake, k=k)
    expected = brute_force(real, fake, k)
    assert (result["precision"], result["recall"]) == pytest.approx(expected, abs=1e-12)
    assert (result["n_real"], result["n_fake"], result["k"]) == (400, 300, k)
    assert 0.1 < result["precision"] < 0.99 and 0.1 < result["recall"] < 0.99  # a non-trivial case


def test_small_blocks_give_the_same_answer():
    real, fake = torch.from_numpy(points(250, 6, 2)), torch.from_numpy(points(180, 6, 3, shift=0.5))
    assert precision_recall(real, fake, block_elements=1000) == precision_recall(real, fake)


def test_blocks_bound_the_memory():
    blocks = _row_blocks(10_000, 10_000, 1 << 24)
    assert sum(b.stop - b.start for b in blocks) == 10_000
    assert max((b.stop - b.start) * 10_000 for b in blocks) <= 1 << 24
    assert [(b.start, b.stop) for b in _row_blocks(5, 10**9, 10)] == [(i, i + 1) for i in range(5)]


def test_knn_radii_exclude_the_sample_itself():
    x = points(120, 5, 4)
    expected = np.sort(np.where(np.eye(120, dtype=bool), np.inf, cdist(x, x)), axis=1)[:, 2] ** 2
    np.testing.assert_allclose(knn_radii(torch.from_numpy(x), k=3).numpy(), expected, rtol=1e-10)
    duplicated = torch.tensor([[0.0], [0.0], [5.0]], dtype=torch.float64)
    assert knn_radii(duplicated, k=1).tolist() == [0.0, 0.0, 25.0]  # a duplicate is a neighbour at 0


def test_identical_and_disjoint_sets():
    x = points(50, 4, 5)
    assert precision_recall(x, x.copy())["precision"] == 1.0
    assert precision_recall(x, x.copy())["recall"] == 1.0
    far = precision_recall(x, x + 100.0)
    assert (far["precision"], far["recall"]) == (0.0, 0.0)


def test_points_on_a_line_known_answer():
    # real: 0, 1, ..., 9 on a line, k = 1 -> every real ball has radius 1 (ties at exactly 1 count).
    real = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    fake = np.array([[0.5, 0.0], [4.0, 0.5], [-1.0, 0.0], [20.0, 0.0], [10.5, 0.0]])
    # inside a real ball: 0.5 (0.5 from 0), (4, 0.5) (0.5 from 4), -1 (exactly 1 from 0); not 20, not 10.5
    # fake radii (k=1): 0.5 -> 1.5 (to -1), (4, .5) -> sqrt(3.5^2 + .25) (to 0.5), -1 -> 1.5,
    # 20 -> 9.5 (to 10.5), 10.5 -> sqrt(6.5^2 + .25) (to (4, .5)). Real points covered: 0, 1, 2 by 0.5
    # (2 exactly at 1.5), 1..7 by (4, .5), 4..9 by 10.5: all ten.
    result = precision_recall(real, fake, k=1)
    assert result["precision"] == pytest.approx(3 / 5, abs=1e-15)
    assert result["recall"] == 1.0
    assert brute_force(real, fake, 1) == (pytest.approx(3 / 5), 1.0)


def test_input_errors():
    real = points(20, 8, 6)
    with pytest.raises(TooFewSamplesError):
        precision_recall(real, real[:3], k=3)  # 3 samples have no third neighbour
    with pytest.raises(FeatureMismatchError):
        precision_recall(real, points(20, 7, 7))
    bad = real.copy()
    bad[2, 2] = np.nan
    with pytest.raises(NonFiniteImageError, match="real features"):
        precision_recall(bad, real)
    with pytest.warns(SampleSizeWarning, match="precision/recall"):
        precision_recall(real[:6], real[6:12])
