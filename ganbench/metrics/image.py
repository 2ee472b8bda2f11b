"""Pairwise image metrics: PSNR and SSIM with the conventions of the super-resolution literature.

Conventions (all computed in float64):

* Inputs are ``(N, C, H, W)`` batches, single ``(C, H, W)`` images or single ``(H, W)`` grayscale
  images, torch tensors or numpy arrays, ``C`` in {1, 3}. ``data_range`` defaults to 255 for ``uint8``
  and must be given for anything else.
* ``y_channel=True`` converts RGB to the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing
  16..235): ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for ``R, G, B`` in 0..255, evaluated
  in MATLAB's order (see :func:`rgb_to_y`). For ``uint8`` input Y is rounded half away from zero, as
  MATLAB returns ``uint8``; other inputs are scaled by ``data_range`` and not rounded. Single-channel
  images are used as they are.
* ``crop_border=b`` drops ``b`` pixels on every side before scoring.
* PSNR per image is ``10 log10(data_range**2 / MSE)`` over all channels and pixels (``inf`` for equal
  images).
* SSIM is Wang et al.'s MATLAB reference: 11x11 Gaussian window with sigma 1.5 (normalised), "valid"
  filtering (no padding), population (co)variances, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with
  ``L = data_range``; per image, the mean of the SSIM map over all channels.
* ``reduction="mean"`` averages the per-image values; ``"none"`` returns them, shape ``(N,)``.
"""

import math

import torch
from torchmetrics import Metric

from ganbench.checks import as_image_batch, as_tensor, check_same_shape, reduce_per_image
from ganbench.errors import ImageRangeError, ImageShapeError

__all__ = ["psnr", "ssim", "rgb_to_y", "PSNR", "SSIM"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# MATLAB rgb2ycbcr: luma row of the BT.601 matrix for RGB in [0, 1]; offset 16 in 0..255 units.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def _as_pair(preds, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prediction/target pair and return both as ``(N, C, H, W)`` tensors."""
    batches = []
    for x, name in ((preds, "preds"), (target, "target")):
        x = as_tensor(x, name)
        if x.ndim in (2, 3):  # a single (H, W) or (C, H, W) image
            x = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))
        batches.append(as_image_batch(x, name))
    check_same_shape(*batches)
    return batches[0], batches[1]


def _resolve_data_range(preds: torch.Tensor, target: torch.Tensor, data_range) -> float:
    """Return ``data_range`` as a float: default 255 for ``uint8`` pairs, otherwise required."""
    if data_range is None:
        if preds.dtype == torch.uint8 and target.dtype == torch.uint8:
            return 255.0
        raise ImageRangeError(
            f"data_range is required for {preds.dtype}/{target.dtype} images "
            "(e.g. data_range=1.0 for images in [0, 1], 255.0 for 0..255)"
        )
    data_range = float(data_range)
    if not math.isfinite(data_range) or data_range <= 0:
        raise ImageRangeError(f"data_range must be a positive number, got {data_range}")
    return data_range


def rgb_to_y(images, data_range: float = 255.0) -> torch.Tensor:
    """Return the BT.601 luma of MATLAB's ``rgb2ycbcr`` as float64, shape ``(N, 1, H, W)``.

    ``images`` is ``(N, 3, H, W)``. ``uint8`` input follows MATLAB's uint8 path exactly,
    ``Y = round(T1 R + T2 G + T3 B + 16)`` with ``T = (1/255) * [65.481, 128.553, 24.966]``, rounded
    half away from zero (values 16..235; ``data_range`` is not used). Other input, in
    ``[0, data_range]``, follows MATLAB's double path on ``x / data_range`` and is scaled back:
    unrounded Y in ``16/255 * data_range .. 235/255 * data_range``.
    """
    x = as_image_batch(images, channels=(3,))
    rgb = x.to(torch.float64)
    t1, t2, t3 = ((1.0 / 255.0) * w for w in _Y_WEIGHTS)
    if x.dtype == torch.uint8:
        y = t1 * rgb[:, 0:1] + t2 * rgb[:, 1:2] + t3 * rgb[:, 2:3] + _Y_OFFSET
        return torch.floor(y + 0.5)  # y >= 16 > 0: half away from zero
    rgb = rgb / data_range
    y = t1 * rgb[:, 0:1] + t2 * rgb[:, 1:2] + t3 * rgb[:, 2:3] + _Y_OFFSET / 255.0
    return y * data_range


def _prepare(preds, target, data_range, crop_border: int, y_channel: bool):
    """Validate, convert to float64 (Y if asked), crop; return ``(preds, target, data_range)``."""
    p, t = _as_pair(preds, target)
    data_range = _resolve_data_range(p, t, data_range)
    if y_channel and p.shape[1] == 3:
        if data_range != 255.0 and torch.uint8 in (p.dtype, t.dtype):
            raise ImageRangeError(
                f"uint8 images give Y in 0..255: data_range must be 255, not {data_range}"
            )
        p, t = rgb_to_y(p, data_range), rgb_to_y(t, data_range)
    else:
        p, t = p.to(torch.float64), t.to(torch.float64)
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        h, w = p.shape[-2:]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ImageShapeError(f"crop_border={crop_border} leaves nothing of {h}x{w} images")
        p = p[..., crop_border:-crop_border, crop_border:-crop_border]
        t = t[..., crop_border:-crop_border, crop_border:-crop_border]
    return p, t, data_range


def psnr(preds, target, data_range=None, crop_border: int = 0, y_channel: bool = False,
         reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (float64); see the module docstring for the conventions.

    Raises :class:`~ganbench.errors.ImageSizeMismatchError` for different shapes and
    :class:`~ganbench.errors.NonFiniteImageError` for NaN/Inf.
    """
    p, t, data_range = _prepare(preds, target, data_range, crop_border, y_channel)
    mse = (p - t).pow(2).mean(dim=(1, 2, 3))
    values = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 gives +inf
    return reduce_per_image(values, reduction)


def _gaussian_window() -> list[float]:
    """The normalised 1-D Gaussian of Wang et al.'s SSIM (11 taps, sigma 1.5)."""
    r = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).tolist()


def _filter_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable filter of the last two axes, "valid" region only (no padding).

    Written as in-place sums of shifted slices: several times faster than float64 ``conv2d`` on CPU.
    """
    for dim in (-2, -1):
        n = x.shape[dim] - len(taps) + 1
        out = x.narrow(dim, 0, n) * taps[0]
        for k, tap in enumerate(taps[1:], start=1):
            out.add_(x.narrow(dim, k, n), alpha=tap)
        x = out
    return x


def ssim(preds, target, data_range=None, crop_border: int = 0, y_channel: bool = False,
         reduction: str = "mean") -> torch.Tensor:
    """Structural similarity (float64), Wang et al.'s MATLAB reference; see the module docstring.

    Images (after ``crop_border``) must be at least 11x11. Raises
    :class:`~ganbench.errors.ImageSizeMismatchError` for different shapes and
    :class:`~ganbench.errors.NonFiniteImageError` for NaN/Inf.
    """
    p, t, data_range = _prepare(preds, target, data_range, crop_border, y_channel)
    h, w = p.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ImageShapeError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}")
    g = _gaussian_window()
    mu_p, mu_t = _filter_valid(p, g), _filter_valid(t, g)
    var_p = _filter_valid(p * p, g) - mu_p * mu_p
    var_t = _filter_valid(t * t, g) - mu_t * mu_t
    cov = _filter_valid(p * t, g) - mu_p * mu_t
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p * mu_p + mu_t * mu_t + c1) * (var_p + var_t + c2)
    )
    return reduce_per_image(ssim_map.mean(dim=(1, 2, 3)), reduction)


class _MeanImageMetric(Metric):
    """Streaming mean of a per-image metric (``_function``) over every image seen by ``update``."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    _function = None  # psnr or ssim, set by the subclass

    def __init__(self, data_range=None, crop_border: int = 0, y_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_range = data_range
        self.crop_border = crop_border
        self.y_channel = y_channel
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds, target) -> None:
        """Add a batch of prediction/target pairs."""
        values = type(self)._function(
            preds, target, self.data_range, self.crop_border, self.y_channel, reduction="none"
        )
        self.total += values.sum().to(self.total.device)
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Mean over all images seen so far (float64)."""
        return self.total / self.count


class PSNR(_MeanImageMetric):
    """Mean per-image PSNR over a stream of batches; arguments as :func:`psnr`."""

    _function = staticmethod(psnr)


class SSIM(_MeanImageMetric):
    """Mean per-image SSIM over a stream of batches; arguments as :func:`ssim`."""

    _function = staticmethod(ssim)
