"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel.

``k(x, y) = (x·y / d + 1)^3``; the unbiased estimate over ``m`` real and ``m`` fake samples is

    (sum_{i≠j} k(x_i, x_j) + sum_{i≠j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m²

(the estimator of the KID paper's code, torch-fidelity and torchmetrics). It is averaged over
``num_subsets`` random subsets of ``subset_size`` samples per side, drawn without replacement: per
subset ``randperm(n_real)[:m]`` then ``randperm(n_fake)[:m]`` from a generator seeded with ``seed``,
which are the subsets torchmetrics' ``KernelInceptionDistance`` draws after ``torch.manual_seed(seed)``.
The reported std is the population std over subsets (``ddof=0``), as in the KID paper's code,
torch-fidelity and torchmetrics.
"""

import torch
from tqdm import tqdm

from ganbench.checks import as_feature_matrix, check_sample_size

__all__ = ["kernel_inception_distance", "polynomial_mmd2"]


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² of two ``(m, d)`` float64 samples under ``k(x, y) = (x·y/d + 1)^3`` (0-d tensor)."""
    m, dim = x.shape
    k_xx, k_yy, k_xy = ((a @ b.T).div_(dim).add_(1.0).pow_(3) for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real_features, fake_features, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> dict:
    """KID between two ``(N, dim)`` feature sets, computed in float64 on the features' device.

    ``subset_size`` is capped at the smaller sample count (as the KID paper's code does); the size used
    is reported. Returns ``{"kid_mean", "kid_std", "n_real", "n_fake", "subset_size", "num_subsets"}``.
    Raises :class:`TooFewSamplesError` below 2 samples a side and warns (:class:`SampleSizeWarning`)
    below ``dim`` samples.
    """
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(f"need num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}")
    real = as_feature_matrix(real_features, "real features")
    fake = as_feature_matrix(fake_features, "fake features", real.shape[1]).to(real.device)
    n_real, n_fake, dim = real.shape[0], fake.shape[0], real.shape[1]
    check_sample_size(n_real, dim, "KID (real)")
    check_sample_size(n_fake, dim, "KID (fake)")
    m = min(subset_size, n_real, n_fake)
    generator = torch.Generator().manual_seed(seed)
    values = torch.empty(num_subsets, dtype=torch.float64)
    for i in tqdm(range(num_subsets), desc="KID subsets", leave=False, disable=None):
        real_idx = torch.randperm(n_real, generator=generator)[:m].to(real.device)
        fake_idx = torch.randperm(n_fake, generator=generator)[:m].to(real.device)
        values[i] = polynomial_mmd2(real[real_idx].double(), fake[fake_idx].double()).cpu()
    return {
        "kid_mean": float(values.mean()),
        "kid_std": float(values.std(correction=0)),
        "n_real": n_real,
        "n_fake": n_fake,
        "subset_size": m,
        "num_subsets": num_subsets,
    }
