"""The interface every feature extractor implements, and batched extraction with any of them."""

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ganbench.errors import EmptyDatasetError


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


def extract_features(
    extractor: FeatureExtractor,
    images,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run ``extractor`` over many images in batches; return ``(N, dim)`` float32 features on the CPU.

    ``images`` is a ``uint8`` ``(N, C, H, W)`` tensor or array, or an iterable of such batches (e.g. a
    DataLoader). ``device`` moves the extractor there first. Shows a tqdm bar when ``progress``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        extractor.to(device)
    extractor.eval()
    if isinstance(images, (torch.Tensor, np.ndarray)):
        batches: Iterable = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        total = len(images)
    else:
        batches, total = images, None
    chunks = []
    with (
        torch.inference_mode(),
        tqdm(total=total, unit="img", desc=extractor.extractor_id, disable=not progress) as bar,
    ):
        for batch in batches:
            features = extractor(batch)
            chunks.append(features.to("cpu", torch.float32))
            bar.update(len(features))
    if not chunks:
        raise EmptyDatasetError("extract_features got no images")
    return torch.cat(chunks)
