"""Fréchet distance and FeatureStats, against scipy's sqrtm, exact SVD references and closed forms."""

import os

import numpy as np
import pytest
import scipy.linalg
import torch

from ganbench.errors import (
    CorruptFileError,
    DataNotFoundError,
    FeatureMismatchError,
    NonFiniteImageError,
    SampleSizeWarning,
    TooFewSamplesError,
)
from ganbench.metrics.frechet import FeatureStats, fid_from_features, fid_from_stats, frechet_distance


def relu_features(n: int, dim: int, seed: int, shift: float = 0.2, dead: int = 0) -> np.ndarray:
    """Post-ReLU correlated Gaussian features; the first ``dead`` units are always 0 (zero variance)."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    x = np.maximum(rng.standard_normal((n, dim)) @ mixing + shift, 0.0)
    x[:, :dead] = 0.0
    return x


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


def sqrtm_fid(mu1, sigma1, mu2, sigma2) -> float:
    """Float64 reference: trace of scipy's sqrtm of the product (real part), as pytorch-fid does."""
    diff = mu1 - mu2
    covmean = np.real(scipy.linalg.sqrtm(sigma1 @ sigma2))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def exact_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Exact FID of two small data sets from their centred data matrices A_c, B_c:
    tr sqrt(S1 S2) is the nuclear norm (sum of singular values) of A_c B_c^T / sqrt((n1 - 1)(n2 - 1))."""
    (mu1, s1), (mu2, s2) = moments(a), moments(b)
    a_c, b_c = a - mu1, b - mu2
    nuclear = np.linalg.svd(a_c @ b_c.T / np.sqrt((len(a) - 1) * (len(b) - 1)), compute_uv=False).sum()
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * nuclear)


@pytest.mark.parametrize("dim, n", [(64, 1000), (256, 2000)])
def test_matches_scipy_sqrtm_on_full_rank_covariances(dim, n):
    a, b = relu_features(n, dim, 1), relu_features(n, dim, 2, shift=0.3)
    ours = frechet_distance(*moments(a), *moments(b))
    reference = sqrtm_fid(*moments(a), *moments(b))
    assert ours == pytest.approx(reference, rel=1e-6)
    assert isinstance(ours, float)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(3)
    var1, var2 = rng.uniform(0.1, 4, 50), rng.uniform(0.1, 4, 50)
    mu1, mu2 = rng.standard_normal(50), rng.standard_normal(50)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)


def test_self_distance_of_rank_deficient_set_is_zero():
    x = relu_features(100, 256, 4, dead=10)  # rank 99 < 256, 10 zero-variance dims
    mu, sigma = moments(x)
    assert np.linalg.matrix_rank(sigma) < 100
    assert 0.0 <= frechet_distance(mu, sigma, mu, sigma) <= 1e-9


@pytest.mark.parametrize("n", [100, 3000])  # singular and full rank
def test_scaled_covariance_gives_its_trace(n):
    mu, sigma = moments(relu_features(n, 128, 5, dead=3))
    # tr S + tr 4S - 2 tr sqrt(4 S^2) = tr S
    assert frechet_distance(mu, sigma, mu, 4 * sigma) == pytest.approx(np.trace(sigma), rel=1e-9)


@pytest.mark.parametrize("n1, n2", [(60, 120), (120, 60), (2000, 100), (100, 2000), (150, 150)])
def test_singular_covariances_match_exact_svd_reference(n1, n2):
    a = relu_features(n1, 256, 6, dead=5)
    b = relu_features(n2, 256, 7, shift=0.3, dead=5)
    expected = exact_fid(a, b)
    assert frechet_distance(*moments(a), *moments(b)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(*moments(b), *moments(a)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # sqrtm of the singular product
def test_dead_units_on_one_side_only():
    a = relu_features(3000, 64, 8)
    b = relu_features(3000, 64, 9, dead=8)  # 8 units dead in fake only: its covariance is singular
    ours = frechet_distance(*moments(a), *moments(b))
    assert np.isfinite(ours)
    assert ours == pytest.approx(sqrtm_fid(*moments(a), *moments(b)), rel=1e-6)
    assert frechet_distance(*moments(b), *moments(a)) == pytest.approx(ours, rel=1e-9)


def test_zero_covariance_and_identical_inputs():
    mu = np.arange(4.0)
    assert frechet_distance(mu, np.zeros((4, 4)), mu + 1, np.zeros((4, 4))) == pytest.approx(4.0, rel=1e-15)
    assert frechet_distance(mu, np.eye(4), mu, np.eye(4)) == 0.0


def test_bad_moments_raise_typed_errors():
    with pytest.raises(FeatureMismatchError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(FeatureMismatchError):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))
    bad = np.eye(3)
    bad[1, 1] = np.nan
    with pytest.raises(NonFiniteImageError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), bad)


# --------------------------------------------------------------------------- FeatureStats


def test_stats_moments_equal_numpy():
    x = relu_features(500, 32, 10) + 5.0  # a large mean: the raw-sum covariance must still be exact
    stats = FeatureStats.from_features(x)
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=0, atol=1e-12)
    assert stats.n == 500


def test_stats_batches_and_merge_equal_one_pass():
    x = torch.from_numpy(relu_features(700, 16, 11)).float()
    one_pass = FeatureStats.from_features(x, "net")
    batched = FeatureStats(16, "net")
    for chunk in x.split(128):
        batched.update(chunk)
    merged = FeatureStats.from_features(x[:300], "net") + FeatureStats.from_features(x[300:], "net")
    for stats in (batched, merged):
        assert stats.n == 700
        np.testing.assert_allclose(stats.mean, one_pass.mean, rtol=1e-13)
        np.testing.assert_allclose(stats.covariance, one_pass.covariance, rtol=0, atol=1e-13)


def test_stats_save_load_roundtrip_is_pytorch_fid_readable(tmp_path):
    x = relu_features(300, 24, 12)
    stats = FeatureStats.from_features(x, "inception-abc")
    path = tmp_path / "real.npz"
    stats.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["real.npz"]  # no temporary file left behind
    with np.load(path) as f:  # what pytorch-fid reads
        np.testing.assert_array_equal(f["mu"], stats.mean)
        np.testing.assert_array_equal(f["sigma"], stats.covariance)
    loaded = FeatureStats.load(path)
    assert (loaded.n, loaded.extractor_id, loaded.dim) == (300, "inception-abc", 24)
    np.testing.assert_array_equal(loaded.covariance, stats.covariance)
    y = relu_features(50, 24, 13)
    merged = loaded + FeatureStats.from_features(y, "inception-abc")
    np.testing.assert_allclose(merged.covariance, np.cov(np.vstack([x, y]), rowvar=False), atol=1e-13)


def test_load_pytorch_fid_file_with_only_mu_sigma(tmp_path):
    x = relu_features(400, 20, 14)
    mu, sigma = moments(x)
    path = tmp_path / "pytorch_fid_stats.npz"
    np.savez(path, mu=mu.astype(np.float32), sigma=sigma)
    stats = FeatureStats.load(path)
    assert stats.n is None and not stats.mergeable and stats.extractor_id == ""
    np.testing.assert_array_equal(stats.covariance, sigma)
    np.testing.assert_array_equal(stats.mean, mu.astype(np.float32).astype(np.float64))
    with pytest.raises(FeatureMismatchError, match="sample count"):
        stats.merge(FeatureStats.from_features(x))
    declared = FeatureStats.load(path, extractor_id="inception-abc", n=400)
    assert declared.mergeable and declared.extractor_id == "inception-abc"
    merged = declared + FeatureStats.from_features(x, "inception-abc")
    np.testing.assert_allclose(merged.covariance, np.cov(np.vstack([x, x]), rowvar=False), atol=1e-6)


def test_different_extractors_are_never_compared(tmp_path):
    a = FeatureStats.from_features(relu_features(100, 8, 15), "inception-abc")
    b = FeatureStats.from_features(relu_features(100, 8, 16), "mnist-123")
    with pytest.raises(FeatureMismatchError, match="different feature extractors"):
        fid_from_stats(a, b)
    with pytest.raises(FeatureMismatchError):
        a.merge(b)
    a.save(tmp_path / "a.npz")
    with pytest.raises(FeatureMismatchError):
        FeatureStats.load(tmp_path / "a.npz", extractor_id="mnist-123")


def test_corrupt_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CorruptFileError):
        FeatureStats.load(garbage)
    no_sigma = tmp_path / "no_sigma.npz"
    np.savez(no_sigma, mu=np.zeros(3))
    with pytest.raises(CorruptFileError, match="sigma"):
        FeatureStats.load(no_sigma)
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez(bad_shape, mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(CorruptFileError):
        FeatureStats.load(bad_shape)
    truncated = tmp_path / "truncated.npz"
    FeatureStats.from_features(relu_features(20, 8, 17)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CorruptFileError):
        FeatureStats.load(truncated)
    with pytest.raises(DataNotFoundError):
        FeatureStats.load(tmp_path / "absent.npz")


def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "stats.npz"
    FeatureStats.from_features(relu_features(20, 4, 18)).save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        FeatureStats.from_features(relu_features(20, 4, 19)).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["stats.npz"]


def test_fid_from_features_reports_counts_and_checks_input():
    a, b = relu_features(300, 16, 20), relu_features(200, 16, 21, shift=0.5)
    result = fid_from_features(a, b)
    assert (result["n_real"], result["n_fake"]) == (300, 200)
    assert result["fid"] == pytest.approx(sqrtm_fid(*moments(a), *moments(b)), rel=1e-6)
    with pytest.warns(SampleSizeWarning, match="10 samples for 16-d"):
        fid_from_features(a, b[:10])
    with pytest.raises(TooFewSamplesError):
        fid_from_features(a, b[:1])
    with pytest.raises(FeatureMismatchError):
        fid_from_features(a, b[:, :8])
    nan = b.copy()
    nan[3, 4] = np.nan
    with pytest.raises(NonFiniteImageError, match="fake features"):
        fid_from_features(a, nan)
