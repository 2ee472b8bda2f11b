"""Inception Score (Salimans et al. 2016) from classifier logits.

``IS = exp(E_x KL(p(y|x) || p(y)))``, with the marginal ``p(y)`` estimated inside each of ``splits``
contiguous splits (boundaries ``i * N // splits``, as in the original code and torch-fidelity), after an
optional seeded shuffle. Computed in float64 from log-softmax. The reported std is the population std
over splits (``ddof=0``), as in the original code and torch-fidelity; torchmetrics' ``InceptionScore``
reports the ``ddof=1`` std (larger by ``sqrt(splits / (splits - 1))``). ``seed=s`` shuffles with the
permutation torchmetrics draws after ``torch.manual_seed(s)``, so the means agree when ``splits``
divides N (torchmetrics' ``chunk`` splits are otherwise sized differently).
"""

import math
import warnings

import torch

from ganbench.checks import as_feature_matrix, check_min_samples
from ganbench.errors import SampleSizeWarning

__all__ = ["inception_score"]


def inception_score(logits, splits: int = 10, seed: int | None = 0) -> dict:
    """Inception Score of ``(N, num_classes)`` logits; returns ``{"is_mean", "is_std", "n"}``.

    ``seed`` shuffles the samples before splitting (generated samples are often ordered by class, which
    would make each split's marginal wrong); ``seed=None`` keeps the given order. Raises
    :class:`TooFewSamplesError` with fewer than ``max(2, splits)`` samples and warns
    (:class:`SampleSizeWarning`) when a split has fewer samples than classes.
    """
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    x = as_feature_matrix(logits, "logits").double()
    n, num_classes = x.shape
    check_min_samples(n, max(2, splits), f"Inception Score with {splits} splits")
    if n // splits < num_classes:
        warnings.warn(
            f"Inception Score: splits of {n // splits} samples for {num_classes} classes; the marginal "
            "p(y) of each split is poorly estimated and the score is biased",
            SampleSizeWarning,
            stacklevel=2,
        )
    if seed is not None:
        x = x[torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(x.device)]
    log_p = torch.log_softmax(x, dim=1)
    scores = torch.empty(splits, dtype=torch.float64)
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        mean_kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores[i] = mean_kl.exp().cpu()
    return {"is_mean": float(scores.mean()), "is_std": float(scores.std(correction=0)), "n": n}
