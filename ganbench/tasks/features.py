"""Feature networks for the tasks, and the cache of reference features.

Reference features are cached on disk by a hash of the reference images and the extractor's id
(``cache_dir()/reference-features/<data sha256>-<extractor id>.npz``) and in memory for the process, so
scoring a second generator on a task only extracts its own side. A cache file that does not match
(other data, other extractor, unreadable) is recomputed and replaced, atomically.

The FID Inception (299x299 inputs) is about a hundred times slower than the 28x28 domain classifiers:
a few images per second on two CPU cores. The tasks therefore compute their Inception metrics on their
own, smaller sample, :func:`inception_sample_count` images a side (option ``inception_samples``; by
default 500 on the CPU and 10,000 on a GPU), against a fixed subset of the reference
(:func:`reference_subset`: the same images for every seed and run, so their features are cached once).
FID depends on the sample size (it is biased upward, more so at small ``n``): it is always reported
with its ``n``, and two FIDs compare only at the same ``n``.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ganbench.features import FeatureExtractor, get_feature_extractor
from ganbench.features.base import extract_features
from ganbench.features.weights import find_weights
from ganbench.files import atomic_path
from ganbench.metrics.frechet import FeatureStats
from ganbench.settings import cache_dir

__all__ = [
    "feature_extractor",
    "inception_available",
    "data_fingerprint",
    "features_of",
    "reference_features",
    "Reference",
    "batch_size_for",
    "INCEPTION_SAMPLES_CPU",
    "INCEPTION_SAMPLES_GPU",
    "inception_sample_count",
    "reference_subset",
]

CACHE_FOLDER = "reference-features"
INCEPTION_SAMPLES_CPU = 500  # Inception images a side by default on the CPU (a few minutes on 2 cores)
INCEPTION_SAMPLES_GPU = 10000  # ... and on a GPU (the usual FID sample size)
REFERENCE_SUBSET_SEED = 0  # fixed: every seed and run uses the same reference subset
_MEMORY: dict[tuple[str, str], "Reference"] = {}


@lru_cache(maxsize=8)
def feature_extractor(name: str, weights: str = "", device: str = "cpu") -> FeatureExtractor:
    """The extractor ``name`` (``inception``, ``mnist``, ``fashion``) on ``device``, built once a process."""
    return get_feature_extractor(name, weights or None, device)


def inception_available(weights: str = "") -> bool:
    """Whether FID Inception weights are at ``weights`` or in their default place."""
    return Path(weights).is_file() if weights else find_weights("inception") is not None


def inception_sample_count(requested: int, device: str, available: int) -> int:
    """Images a side for the Inception metrics: ``requested``, or with 0 the device's default
    (:data:`INCEPTION_SAMPLES_CPU` on the CPU, :data:`INCEPTION_SAMPLES_GPU` elsewhere), at most
    ``available``."""
    default = INCEPTION_SAMPLES_CPU if torch.device(device).type == "cpu" else INCEPTION_SAMPLES_GPU
    return min(requested or default, available)


def reference_subset(images: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` of the reference ``images`` drawn without replacement by a fixed seed, in their order
    (all of them when ``count`` covers them): the same subset whatever the evaluation seed."""
    if count >= len(images):
        return images
    chosen = np.random.default_rng(REFERENCE_SUBSET_SEED).choice(len(images), count, replace=False)
    return images[torch.from_numpy(np.sort(chosen))]


def batch_size_for(extractor: FeatureExtractor) -> int:
    """Extraction batch size: 50 for the Inception (299x299 inputs), 1,000 for the 28x28 classifiers."""
    return 50 if extractor.dim >= 1024 else 1000


def data_fingerprint(images: torch.Tensor) -> str:
    """sha256 (hex) of a ``uint8`` image batch: its shape and its bytes."""
    digest = hashlib.sha256(f"{tuple(images.shape)}|{images.dtype};".encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


def features_of(
    extractor: FeatureExtractor, images: torch.Tensor, device: str = "cpu", progress: bool = False
) -> torch.Tensor:
    """``(N, dim)`` float32 CPU features of ``uint8`` images."""
    return extract_features(
        extractor, images, batch_size=batch_size_for(extractor), device=device, progress=progress
    )


def _cache_path(fingerprint: str, extractor_id: str) -> Path:
    safe_id = re.sub(r"[^A-Za-z0-9._-]+", "_", extractor_id)
    return cache_dir() / CACHE_FOLDER / f"{fingerprint[:32]}-{safe_id}.npz"


def _read_cached(path: Path, fingerprint: str, extractor_id: str) -> torch.Tensor | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["data_sha256"]) != fingerprint or str(archive["extractor_id"]) != extractor_id:
                return None
            return torch.from_numpy(archive["features"].astype(np.float32))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def _write_cached(path: Path, features: torch.Tensor, fingerprint: str, extractor_id: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            features=features.numpy(),
            data_sha256=np.array(fingerprint),
            extractor_id=np.array(extractor_id),
        )


@dataclass
class Reference:
    """Features of a reference image set, with its fingerprint; :attr:`stats` is computed once."""

    features: torch.Tensor
    fingerprint: str
    extractor_id: str
    _stats: FeatureStats | None = None

    @property
    def stats(self) -> FeatureStats:
        """:class:`FeatureStats` of all reference features (computed on first use, then kept)."""
        if self._stats is None:
            self._stats = FeatureStats.from_features(self.features, self.extractor_id)
        return self._stats


def reference_features(
    extractor: FeatureExtractor, images: torch.Tensor, device: str = "cpu", progress: bool = False
) -> Reference:
    """Features of the reference ``images``, from the memory or disk cache when they were computed before."""
    fingerprint = data_fingerprint(images)
    key = (fingerprint, extractor.extractor_id)
    if key not in _MEMORY:
        path = _cache_path(fingerprint, extractor.extractor_id)
        features = _read_cached(path, fingerprint, extractor.extractor_id)
        if features is None:
            features = features_of(extractor, images, device, progress)
            _write_cached(path, features, fingerprint, extractor.extractor_id)
        _MEMORY[key] = Reference(features, fingerprint, extractor.extractor_id)
    return _MEMORY[key]
