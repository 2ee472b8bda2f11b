"""Improved precision and recall (Kynkäänniemi et al. 2019).

Each feature set's manifold is the union of balls around its samples whose radius is the distance to
the sample's k-th nearest neighbour within the same set (the sample itself excluded). Precision is the
fraction of fake samples inside the real manifold (within the radius of at least one real sample, ``<=``
as in the reference implementation); recall is the fraction of real samples inside the fake manifold.

Distances are squared Euclidean, computed in float64 on the features' device in row blocks, so memory
stays bounded (a block is at most ``block_elements`` distances) whatever the set sizes.
"""

import torch
from tqdm import tqdm

from ganbench.checks import as_feature_matrix, check_sample_size

__all__ = ["precision_recall", "knn_radii"]

_BLOCK_ELEMENTS = 1 << 24  # distances per block: 128 MiB of float64


def _row_blocks(n_rows: int, n_cols: int, block_elements: int) -> list[slice]:
    """Row slices covering ``n_rows`` rows with at most ``block_elements`` distances each."""
    step = max(1, block_elements // max(n_cols, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _squared_distances(a: torch.Tensor, b: torch.Tensor, b_sq_norms: torch.Tensor) -> torch.Tensor:
    """``(len(a), len(b))`` squared Euclidean distances (float64, clamped at 0)."""
    dist = (a * a).sum(dim=1, keepdim=True) + b_sq_norms[None, :] - 2.0 * (a @ b.T)
    return dist.clamp_(min=0.0)


def knn_radii(features: torch.Tensor, k: int = 3, block_elements: int = _BLOCK_ELEMENTS) -> torch.Tensor:
    """Squared distance from each row of ``(N, d)`` float64 ``features`` to its k-th nearest other row."""
    n = features.shape[0]
    sq_norms = (features * features).sum(dim=1)
    radii = torch.empty(n, dtype=torch.float64, device=features.device)
    for rows in tqdm(_row_blocks(n, n, block_elements), desc="k-NN radii", leave=False, disable=None):
        dist = _squared_distances(features[rows], features, sq_norms)
        own = torch.arange(rows.start, rows.stop, device=features.device)
        dist[own - rows.start, own] = float("inf")  # exclude the sample itself
        radii[rows] = dist.kthvalue(k, dim=1).values
    return radii


def _coverage(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_radii: torch.Tensor,
    fake_radii: torch.Tensor,
    block_elements: int,
) -> tuple[int, int]:
    """Return (#fake inside the real manifold, #real inside the fake manifold) in one sweep."""
    real_sq_norms = (real * real).sum(dim=1)
    fake_inside = 0
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    blocks = _row_blocks(fake.shape[0], real.shape[0], block_elements)
    for rows in tqdm(blocks, desc="precision/recall", leave=False, disable=None):
        dist = _squared_distances(fake[rows], real, real_sq_norms)  # (fake block, real)
        fake_inside += int((dist <= real_radii[None, :]).any(dim=1).sum())
        real_inside |= (dist <= fake_radii[rows, None]).any(dim=0)
    return fake_inside, int(real_inside.sum())


def precision_recall(real_features, fake_features, k: int = 3, block_elements: int = _BLOCK_ELEMENTS) -> dict:
    """Improved precision and recall of ``(N, dim)`` fake features against real ones.

    Returns ``{"precision", "recall", "n_real", "n_fake", "k"}``. Raises :class:`TooFewSamplesError`
    with ``k`` or fewer samples a side (no k-th neighbour) and warns (:class:`SampleSizeWarning`) below
    ``dim`` samples.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real = as_feature_matrix(real_features, "real features").double()
    fake = as_feature_matrix(fake_features, "fake features", real.shape[1]).double().to(real.device)
    dim = real.shape[1]
    check_sample_size(real.shape[0], dim, f"precision/recall (real, k={k})", minimum=k + 1)
    check_sample_size(fake.shape[0], dim, f"precision/recall (fake, k={k})", minimum=k + 1)
    real_radii = knn_radii(real, k, block_elements)
    fake_radii = knn_radii(fake, k, block_elements)
    fake_inside, real_inside = _coverage(real, fake, real_radii, fake_radii, block_elements)
    return {
        "precision": fake_inside / fake.shape[0],
        "recall": real_inside / real.shape[0],
        "n_real": real.shape[0],
        "n_fake": fake.shape[0],
        "k": k,
    }
