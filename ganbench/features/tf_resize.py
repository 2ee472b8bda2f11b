"""Bilinear resizing with TensorFlow 1.x semantics, as the FID Inception expects.

TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)`` (the resize inside the original FID
graph, and what StyleGAN2-ADA and torch-fidelity reproduce) maps output pixel ``d`` to the source
coordinate ``s = d * in_size / out_size``: no half-pixel offset, unlike PIL or
``torch.nn.functional.interpolate(align_corners=False)``, which use ``(d + 0.5) * in / out - 0.5``. It
blends the pixels ``floor(s)`` and ``min(floor(s) + 1, in_size - 1)`` with weights ``1 - frac(s)`` and
``frac(s)``. As in TensorFlow, the scale and the coordinates are float32, and each output pixel is
``top + (bottom - top) * frac_y`` with ``top``/``bottom`` the horizontal blends of its two source rows.

Only the two source rows and columns of each output pixel are read (gathers, no dense matrices), so
the cost grows with the output size, not the input size.
"""

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=32)
def _source_coords(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lower, upper, frac)`` arrays of length ``out_size`` (cached; treat as read-only)."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    lower = np.floor(src)
    frac = src - lower
    lower = lower.astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    return lower, upper, frac


def tf1_source_coords(in_size: int, out_size: int, device=None):
    """Return ``(lower, upper, frac)`` tensors: the two source indices and the blend weight of each output."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    return tuple(torch.from_numpy(a).to(device) for a in _source_coords(in_size, out_size))


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(..., H, W)`` images to ``size = (out_h, out_w)`` with TF 1.x bilinear semantics.

    The result is float32 for integer input (the gathers run on the integers, so only output-sized
    data is converted), else the input's dtype. When the size is unchanged the input is returned as
    float (the TF 1.x resize is then the identity).
    """
    out_h, out_w = size
    in_h, in_w = images.shape[-2:]
    dtype = images.dtype if images.is_floating_point() else torch.float32
    if (in_h, in_w) == (out_h, out_w):
        return images.to(dtype)
    row_lo, row_hi, frac_y = tf1_source_coords(in_h, out_h, images.device)
    col_lo, col_hi, frac_x = tf1_source_coords(in_w, out_w, images.device)
    frac_x, frac_y = frac_x.to(dtype), frac_y.to(dtype).unsqueeze(-1)

    def blend_columns(row_index: torch.Tensor) -> torch.Tensor:
        rows = images.index_select(-2, row_index)
        left, right = rows.index_select(-1, col_lo).to(dtype), rows.index_select(-1, col_hi).to(dtype)
        return left + (right - left) * frac_x

    top, bottom = blend_columns(row_lo), blend_columns(row_hi)
    return top + (bottom - top) * frac_y
