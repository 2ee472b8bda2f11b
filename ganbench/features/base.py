"""The interface every feature extractor implements."""

import torch
from torch import nn


class FeatureExtractor(nn.Module):
    """Maps ``uint8`` image batches ``(N, C, H, W)`` to float32 features ``(N, dim)``.

    Subclasses set :attr:`extractor_id` (stable, names the network and its weights' hash, stored in
    statistics files so that features from different networks are never compared) and :attr:`dim`.
    Extractors that also have class logits (for the Inception Score) set ``num_classes`` and implement
    :meth:`logits`.
    """

    extractor_id: str = ""
    dim: int = 0
    num_classes: int | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Return ``(N, dim)`` float32 features of a validated ``uint8`` batch."""
        raise NotImplementedError

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``(N, num_classes)`` class logits; extractors without a classifier head refuse."""
        raise NotImplementedError(f"{self.extractor_id} has no classifier head, so no Inception Score")
