"""torchmetrics ``Metric`` classes for the distribution metrics: FID, KID, InceptionScore, PrecisionRecall.

Each takes an optional :class:`~ganbench.features.base.FeatureExtractor`: with one, ``update`` takes
``uint8`` image batches ``(N, C, H, W)``; without one, it takes feature (or, for the Inception Score,
logit) matrices ``(N, dim)`` directly. ``update(x, real=True/False)`` adds to the real or fake side.
``compute()`` returns a dict with the value(s) and the sample counts, from the functional API.

FID keeps only float64 sums (``dist_reduce_fx="sum"``), so batches, processes and instances
(``merge_state``) combine exactly; its real side can be seeded with cached :class:`FeatureStats`.
KID, PrecisionRecall and InceptionScore keep the features/logits (``dist_reduce_fx="cat"``); their
seeded subsets/splits follow the sample order, which ``merge_state`` defines as incoming first.
A distribution metric has no per-batch value, so ``forward`` only updates.
"""

from __future__ import annotations

import os

import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from ganbench.checks import as_feature_matrix, as_uint8_batch, check_min_samples
from ganbench.errors import FeatureMismatchError
from ganbench.features.base import FeatureExtractor
from ganbench.metrics.frechet import FeatureStats, check_same_extractor, fid_from_stats
from ganbench.metrics.inception_score import inception_score
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.metrics.precision_recall import precision_recall

__all__ = ["FID", "KID", "InceptionScore", "PrecisionRecall"]


class _DistributionMetric(Metric):
    """Shared plumbing: the optional frozen feature extractor, input checks and id-checked merging."""

    is_differentiable = False
    full_state_update = False

    def __init__(
        self, extractor: FeatureExtractor | None, feature_dim: int | None, extractor_id: str, **kwargs
    ):
        super().__init__(**kwargs)
        if extractor is not None and not isinstance(extractor, FeatureExtractor):
            raise TypeError(f"extractor must be a ganbench FeatureExtractor, got {type(extractor).__name__}")
        self.extractor = extractor.eval() if extractor is not None else None
        self.extractor_id = extractor.extractor_id if extractor is not None else extractor_id
        self.feature_dim = extractor.dim if extractor is not None else feature_dim

    def train(self, mode: bool = True) -> _DistributionMetric:
        """Switch the metric's mode but keep the extractor in eval mode (frozen batch-norm statistics)."""
        super().train(mode)
        if self.extractor is not None:
            self.extractor.eval()
        return self

    def forward(self, *args, **kwargs) -> None:
        """Same as :meth:`update` (a distribution metric has no per-batch value)."""
        self.update(*args, **kwargs)

    def merge_state(self, incoming_state) -> None:
        """torchmetrics' ``merge_state``, refusing metrics built on another feature extractor."""
        other_id = getattr(incoming_state, "extractor_id", self.extractor_id)  # a dict state has none
        if other_id != self.extractor_id:
            raise FeatureMismatchError(
                f"cannot merge metrics of different feature extractors: {self.extractor_id!r} vs {other_id!r}"
            )
        super().merge_state(incoming_state)

    def _features(self, x, name: str, logits: bool = False) -> torch.Tensor:
        """Features (or class logits) of a batch on the metric's device: the extractor's output for
        validated uint8 images, or the given ``(N, dim)`` matrix, validated."""
        if self.extractor is None:
            return as_feature_matrix(x, name, self.feature_dim).detach().to(self.device)
        images = as_uint8_batch(x, name).to(self.device)
        with torch.no_grad():
            out = self.extractor.logits(images) if logits else self.extractor(images)
        what = "logits" if logits else "features"
        return as_feature_matrix(out, f"{name} ({what} of the extractor)", self.feature_dim)

    def _checked_dim(self, features: torch.Tensor, stored: list[torch.Tensor], name: str) -> torch.Tensor:
        """Refuse a batch whose feature dimension differs from the batches already stored."""
        if stored and features.shape[1] != stored[0].shape[1]:
            raise FeatureMismatchError(
                f"{name}: {features.shape[1]}-d, earlier batches were {stored[0].shape[1]}-d"
            )
        return features


def _concat(stored, what: str) -> torch.Tensor:
    """Concatenate a cat-state (list before sync, tensor after), refusing an empty one."""
    if isinstance(stored, list) and not stored:
        check_min_samples(0, 1, what)
    return dim_zero_cat(stored)


class _FeatureSetsMetric(_DistributionMetric):
    """Base of the metrics that keep every real and fake feature vector (KID, PrecisionRecall)."""

    def __init__(
        self, extractor: FeatureExtractor | None, feature_dim: int | None, extractor_id: str, **kwargs
    ):
        super().__init__(extractor, feature_dim, extractor_id, **kwargs)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, x, real: bool) -> None:
        """Add a batch of images (with an extractor) or ``(N, dim)`` features to the real or fake side."""
        stored = self.real_features if real else self.fake_features
        stored.append(self._checked_dim(self._features(x, "batch"), stored, "batch"))

    def _feature_sets(self, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All real and all fake features; ``what`` names the metric in the error for an empty side."""
        return _concat(self.real_features, f"{what} (real)"), _concat(self.fake_features, f"{what} (fake)")


class FID(_DistributionMetric):
    """Fréchet distance between the Gaussian fits of real and fake features.

    Args:
        extractor: feature extractor (images in), or ``None`` to feed features directly.
        feature_dim: the feature dimension when no extractor is given (taken from ``real_stats`` if omitted).
        extractor_id: the id of the features fed directly (default: ``real_stats``' id, else ``""``).
        real_stats: cached reference statistics (:class:`FeatureStats` or a path for
            :meth:`FeatureStats.load`) that the real side starts from; kept across :meth:`reset`.
    """

    higher_is_better = False

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        feature_dim: int | None = None,
        extractor_id: str | None = None,
        real_stats: FeatureStats | str | os.PathLike | None = None,
        **kwargs,
    ):
        if real_stats is not None and not isinstance(real_stats, FeatureStats):
            real_stats = FeatureStats.load(real_stats, extractor_id=extractor_id)
        if feature_dim is None and extractor is None and real_stats is not None:
            feature_dim = real_stats.dim
        if extractor is None and feature_dim is None:
            raise ValueError("FID without an extractor needs feature_dim (or real_stats)")
        if extractor_id is None:
            extractor_id = real_stats.extractor_id if real_stats is not None else ""
        super().__init__(extractor, feature_dim, extractor_id, **kwargs)
        dim = self.feature_dim
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
            outer = torch.zeros(dim, dim, dtype=torch.float64)
            self.add_state(f"{side}_outer_sum", outer, dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.real_reference: FeatureStats | None = None
        if real_stats is not None:
            self.set_real_stats(real_stats)

    def set_real_stats(self, stats: FeatureStats) -> None:
        """Use ``stats`` (same extractor and dimension) as the starting point of the real side."""
        check_same_extractor(self.extractor_id, self.feature_dim, stats.extractor_id, stats.dim)
        self.real_reference = stats

    def update(self, x, real: bool) -> None:
        """Add a batch of images (with an extractor) or ``(N, dim)`` features to the real or fake side."""
        side = "real" if real else "fake"
        features = self._features(x, f"{side} batch").to(self.device, torch.float64)
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
        setattr(self, f"{side}_outer_sum", getattr(self, f"{side}_outer_sum") + features.T @ features)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + features.shape[0])

    def side_stats(self, real: bool) -> FeatureStats:
        """The statistics of one side so far (the real side includes ``real_stats``); e.g. to save them."""
        side = "real" if real else "fake"
        stats = FeatureStats.from_sums(
            getattr(self, f"{side}_sum").cpu().numpy(),
            getattr(self, f"{side}_outer_sum").cpu().numpy(),
            int(getattr(self, f"{side}_n")),
            self.extractor_id,
        )
        if real and self.real_reference is not None:
            return self.real_reference if stats.n == 0 else self.real_reference.merge(stats)
        return stats

    def compute(self) -> dict:
        """``{"fid", "n_real", "n_fake"}``."""
        return fid_from_stats(self.side_stats(real=True), self.side_stats(real=False))


class KID(_FeatureSetsMetric):
    """Kernel Inception Distance (see :func:`~ganbench.metrics.kid.kernel_inception_distance`)."""

    higher_is_better = False

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        num_subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 0,
        feature_dim: int | None = None,
        extractor_id: str = "",
        **kwargs,
    ):
        super().__init__(extractor, feature_dim, extractor_id, **kwargs)
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed

    def compute(self) -> dict:
        """``{"kid_mean", "kid_std", "n_real", "n_fake", "subset_size", "num_subsets"}``."""
        real, fake = self._feature_sets("KID")
        return kernel_inception_distance(real, fake, self.num_subsets, self.subset_size, self.seed)


class PrecisionRecall(_FeatureSetsMetric):
    """Improved precision and recall (see :func:`~ganbench.metrics.precision_recall.precision_recall`)."""

    higher_is_better = True

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        k: int = 3,
        feature_dim: int | None = None,
        extractor_id: str = "",
        **kwargs,
    ):
        super().__init__(extractor, feature_dim, extractor_id, **kwargs)
        self.k = k

    def compute(self) -> dict:
        """``{"precision", "recall", "n_real", "n_fake", "k"}``."""
        real, fake = self._feature_sets("precision/recall")
        return precision_recall(real, fake, self.k)


class InceptionScore(_DistributionMetric):
    """Inception Score of generated samples (see :func:`~ganbench.metrics.inception_score.inception_score`).

    With an extractor, ``update`` takes images and uses ``extractor.logits``; without one it takes
    ``(N, num_classes)`` logits.
    """

    higher_is_better = True

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        splits: int = 10,
        seed: int | None = 0,
        num_classes: int | None = None,
        extractor_id: str = "",
        **kwargs,
    ):
        super().__init__(extractor, num_classes, extractor_id, **kwargs)
        if extractor is not None:
            if not extractor.num_classes:
                raise ValueError(f"{extractor.extractor_id!r} has no classifier head, so no Inception Score")
            self.feature_dim = extractor.num_classes
        self.splits, self.seed = splits, seed
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, x) -> None:
        """Add a batch of images (with an extractor) or ``(N, num_classes)`` logits."""
        self.logits.append(self._checked_dim(self._features(x, "batch", logits=True), self.logits, "batch"))

    def compute(self) -> dict:
        """``{"is_mean", "is_std", "n"}``."""
        return inception_score(_concat(self.logits, "Inception Score"), self.splits, self.seed)
