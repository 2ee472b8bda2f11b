"""Input validation shared by every metric, extractor and loader.

Conventions: image batches are ``(N, C, H, W)`` with ``C`` in {1, 3} (``(N, H, W)`` is read as
grayscale); feature extractors take ``uint8`` in 0..255; :func:`to_uint8` converts float images from a
stated value range. Features are real ``(N, dim)`` matrices (:func:`as_feature_matrix`); sample counts
are checked by :func:`check_min_samples` and :func:`check_sample_size`; per-image metrics take a
``reduction`` of ``"mean"`` or ``"none"`` (:func:`reduce_per_image`).
"""

import warnings

import numpy as np
import torch

from ganbench.errors import (
    FeatureMismatchError,
    ImageRangeError,
    ImageShapeError,
    ImageSizeMismatchError,
    NonFiniteImageError,
    SampleSizeWarning,
    TooFewSamplesError,
)

REDUCTIONS = ("mean", "none")


def as_tensor(x, name: str = "images") -> torch.Tensor:
    """Return ``x`` (tensor or array-like) as a torch tensor without copying where possible."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as exc:
        raise ImageRangeError(f"{name}: cannot convert {type(x).__name__} to a tensor ({exc})") from None


def check_finite(x: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Raise :class:`NonFiniteImageError` if a floating tensor holds NaN or Inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteImageError(f"{name}: {bad} NaN/Inf value(s) out of {x.numel()}")
    return x


def as_image_batch(images, name: str = "images", channels: tuple[int, ...] = (1, 3)) -> torch.Tensor:
    """Validate an image batch and return it as an ``(N, C, H, W)`` tensor (same dtype).

    ``(N, H, W)`` input gains a channel axis. Raises :class:`ImageShapeError` for any other rank or a
    channel count outside ``channels``, and :class:`NonFiniteImageError` for NaN/Inf.
    """
    x = as_tensor(images, name)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ImageShapeError(f"{name}: expected (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] not in channels:
        hint = " (channels-last? use x.permute(0, 3, 1, 2))" if x.shape[-1] in channels else ""
        raise ImageShapeError(
            f"{name}: expected {' or '.join(map(str, channels))} channel(s) in dim 1, "
            f"got shape {tuple(x.shape)}{hint}"
        )
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ImageShapeError(f"{name}: empty batch, shape {tuple(x.shape)}")
    return check_finite(x, name)


def as_uint8_batch(images, name: str = "images", channels: tuple[int, ...] = (1, 3)) -> torch.Tensor:
    """Validate a ``uint8`` image batch (what feature extractors take); see :func:`as_image_batch`."""
    x = as_image_batch(images, name, channels)
    if x.dtype != torch.uint8:
        raise ImageRangeError(
            f"{name}: expected uint8 images in 0..255, got {x.dtype}; convert float images with "
            "ganbench.checks.to_uint8(x, value_range=(lo, hi))"
        )
    return x


def to_uint8(images, value_range: tuple[float, float] = (0.0, 1.0), name: str = "images") -> torch.Tensor:
    """Map float images from ``value_range`` to ``uint8`` 0..255 (round half to even, like numpy).

    Raises :class:`ImageRangeError` if values fall outside ``value_range`` by more than 1e-3 of its
    width (wrong convention, e.g. [-1, 1] images declared as [0, 1]).
    """
    x = check_finite(as_tensor(images, name), name)
    if not x.is_floating_point():
        raise ImageRangeError(f"{name}: to_uint8 expects floating images, got {x.dtype}")
    lo, hi = value_range
    slack = 1e-3 * (hi - lo)
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < lo - slack or x_max > hi + slack:
        raise ImageRangeError(
            f"{name}: values span [{x_min:.4g}, {x_max:.4g}], outside the declared range [{lo}, {hi}]"
        )
    scaled = (x.double() - lo) * (255.0 / (hi - lo))
    return scaled.round().clamp_(0, 255).to(torch.uint8)


def check_same_shape(preds: torch.Tensor, target: torch.Tensor) -> None:
    """Raise :class:`ImageSizeMismatchError` unless a prediction and its target have one shape."""
    if tuple(preds.shape) != tuple(target.shape):
        raise ImageSizeMismatchError(
            f"prediction shape {tuple(preds.shape)} differs from target shape {tuple(target.shape)}"
        )


def check_min_samples(n: int, minimum: int, what: str) -> None:
    """Raise :class:`TooFewSamplesError` when ``n < minimum``."""
    if n < minimum:
        raise TooFewSamplesError(f"{what} needs at least {minimum} samples, got {n}")


def check_sample_size(n: int | None, dim: int, what: str, minimum: int = 2) -> None:
    """Raise :class:`TooFewSamplesError` below ``minimum`` samples; warn when ``n < dim``.

    ``n=None`` (a statistics file without a sample count) is accepted silently.
    """
    if n is None:
        return
    check_min_samples(n, minimum, what)
    if n < dim:
        warnings.warn(
            f"{what}: {n} samples for {dim}-d features; with fewer samples than dimensions the value "
            "is unreliable (FID is biased upward) and not comparable to values from more samples",
            SampleSizeWarning,
            stacklevel=3,
        )


def as_feature_matrix(features, name: str = "features", dim: int | None = None) -> torch.Tensor:
    """Validate a ``(N, dim)`` feature matrix and return it as a tensor (same dtype and device).

    Raises :class:`FeatureMismatchError` for another shape or a ``dim`` other than the expected one,
    and :class:`NonFiniteImageError` (a ``ValueError``) naming ``name`` for NaN/Inf values.
    """
    x = as_tensor(features, name)
    if x.ndim != 2:
        raise FeatureMismatchError(f"{name}: expected a (N, dim) feature matrix, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise FeatureMismatchError(f"{name}: expected {dim}-d features, got {x.shape[1]}-d")
    if x.is_complex() or x.dtype == torch.bool:
        raise FeatureMismatchError(f"{name}: expected real-valued features, got {x.dtype}")
    return check_finite(x, name)


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` when it is one of :data:`REDUCTIONS`, else raise ``ValueError``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce_per_image(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to per-image values: ``"mean"`` gives a scalar, ``"none"`` the values."""
    check_reduction(reduction)
    return values.mean() if reduction == "mean" else values
