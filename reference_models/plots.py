"""Pictures of a training run drawn with Pillow: sample grids and loss curves."""

import math

import torch
from PIL import Image, ImageDraw, ImageFont

from ganbench.checks import to_uint8

__all__ = ["image_grid", "loss_curves", "CURVE_COLORS"]

CURVE_COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def image_grid(images: torch.Tensor, columns: int, padding: int = 2, background: int = 128) -> Image.Image:
    """Tile ``(N, C, H, W)`` images in ``[-1, 1]`` (C = 1 or 3) row by row, ``columns`` per row."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"expected (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    pixels = to_uint8(images.detach().float().cpu().clamp(-1.0, 1.0), value_range=(-1.0, 1.0))
    n, channels, height, width = pixels.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    grid = torch.full(
        (channels, rows * (height + padding) + padding, columns * (width + padding) + padding),
        background,
        dtype=torch.uint8,
    )
    for i in range(n):
        top = padding + (i // columns) * (height + padding)
        left = padding + (i % columns) * (width + padding)
        grid[:, top : top + height, left : left + width] = pixels[i]
    array = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0], "L") if channels == 1 else Image.fromarray(array, "RGB")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]``."""
    span = high - low
    raw = span / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def loss_curves(
    history: list[dict], keys: list[str] | None = None, size: tuple[int, int] = (720, 420)
) -> Image.Image:
    """A line chart of ``history`` (dicts with ``"step"`` and metric values) for ``keys``.

    ``keys`` defaults to every metric named ``*/loss``. Non-finite values are skipped.
    """
    keys = keys or sorted({k for record in history for k in record if k.endswith("/loss")})
    series = {
        key: [(r["step"], r[key]) for r in history if key in r and math.isfinite(r[key])] for key in keys
    }
    points = [p for values in series.values() for p in values]
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    left, right, top, bottom = 70, width - 20, 20, height - 40
    draw.rectangle((left, top, right, bottom), outline="black")
    if not points:
        draw.text((left + 10, top + 10), "no metrics yet", fill="black", font=font)
        return image
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high - y_low < 1e-12:
        y_low, y_high = y_low - 1.0, y_high + 1.0

    def to_xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - x_low) / (x_high - x_low) * (right - left)
        y = bottom - (value - y_low) / (y_high - y_low) * (bottom - top)
        return x, y

    for tick in _ticks(y_low, y_high):
        _, y = to_xy(x_low, tick)
        draw.line((left - 4, y, left, y), fill="black")
        draw.line((left + 1, y, right - 1, y), fill=(230, 230, 230))
        draw.text((left - 6, y), _label(tick), fill="black", font=font, anchor="rm")
    for tick in _ticks(x_low, x_high):
        x, _ = to_xy(tick, y_low)
        draw.line((x, bottom, x, bottom + 4), fill="black")
        draw.text((x, bottom + 6), _label(tick), fill="black", font=font, anchor="ma")
    draw.text(((left + right) / 2, height - 4), "step", fill="black", font=font, anchor="mb")
    legend_top = top + 4
    draw.rectangle(
        (right - 116, legend_top, right - 4, legend_top + 16 * len(series)),
        fill="white",
        outline=(200, 200, 200),
    )
    for i, (key, values) in enumerate(series.items()):
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        xy = [to_xy(step, value) for step, value in values]
        if len(xy) == 1:
            x, y = xy[0]
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
        elif xy:
            draw.line(xy, fill=color, width=2)
        draw.line((right - 110, top + 12 + 16 * i, right - 90, top + 12 + 16 * i), fill=color, width=2)
        draw.text((right - 85, top + 12 + 16 * i), key, fill="black", font=font, anchor="lm")
    return image
