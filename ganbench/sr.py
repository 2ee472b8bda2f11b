"""Super-resolution evaluation: the standard test sets and the bicubic baseline.

The protocol is the one of the SR literature (SRCNN, VDSR, EDSR, RCAN): the HR image is cropped to a
multiple of ``scale``, ``LR = imresize(HR, 1/scale)`` with MATLAB-compatible bicubic, the model output
is compared to HR as ``uint8`` on the BT.601 Y channel with a ``scale``-pixel border removed.
"""

import os
from pathlib import Path

import torch
from tqdm import tqdm

from ganbench.data.images import list_images, mod_crop, read_image
from ganbench.errors import DataNotFoundError
from ganbench.imresize import imresize
from ganbench.metrics.image import psnr, ssim
from ganbench.settings import data_root

__all__ = [
    "SR_DATASETS",
    "known_sr_dataset",
    "sr_dataset_dir",
    "score_sr",
    "bicubic_upscale",
    "bicubic_baseline",
]

SR_DATASETS = ("Set5", "Set14", "BSD100")


def known_sr_dataset(dataset: str | os.PathLike) -> str | None:
    """Return the canonical name of a standard SR test set (case-insensitive match), else None."""
    return next((name for name in SR_DATASETS if name.lower() == str(dataset).lower()), None)


def sr_dataset_dir(dataset: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Return the HR folder of ``dataset``: a known name (case-insensitive) resolves to
    ``<data root>/sr/NAME/HR``; anything else is taken as a folder of HR images."""
    name = known_sr_dataset(dataset)
    if name is None:
        folder = Path(dataset).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(
                f"{str(dataset)!r} is neither a known SR set ({', '.join(SR_DATASETS)}) nor a folder"
            )
        return folder
    folder = data_root(root) / "sr" / name / "HR"
    if not folder.is_dir():
        raise DataNotFoundError(f"SR set {name}: folder {str(folder)!r} does not exist")
    return folder


def score_sr(sr, hr, scale: int) -> tuple[float, float]:
    """PSNR (dB) and SSIM of one ``uint8`` SR result against its mod-cropped HR image, the SR way:
    Y channel (MATLAB ``rgb2ycbcr``), ``scale``-pixel border removed, ``data_range=255``."""
    kwargs = {"data_range": 255.0, "crop_border": scale, "y_channel": True}
    return float(psnr(sr, hr, **kwargs)), float(ssim(sr, hr, **kwargs))


def bicubic_upscale(hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(hr_cropped, sr)``: HR cropped to a multiple of ``scale`` and its bicubic
    reconstruction ``imresize(imresize(hr, 1/scale), scale)`` (``uint8`` throughout)."""
    hr = mod_crop(hr, scale)
    lr = imresize(hr, 1.0 / scale)
    return hr, imresize(lr, float(scale))


def bicubic_baseline(dataset: str | os.PathLike, scale: int = 4, root=None,
                     progress: bool = True) -> dict:
    """Score bicubic upscaling on an SR test set (name or HR folder).

    Returns ``{"dataset", "hr_dir", "scale", "images": [{"name", "psnr", "ssim"}, ...],
    "mean_psnr", "mean_ssim"}`` (means over images, PSNR in dB).
    """
    if int(scale) != scale or scale < 2:
        raise ValueError(f"scale must be an integer >= 2, got {scale}")
    scale = int(scale)
    hr_dir = sr_dataset_dir(dataset, root)
    rows = []
    for path in tqdm(list_images(hr_dir), desc=f"bicubic x{scale}", disable=not progress, leave=False):
        hr, sr = bicubic_upscale(read_image(path), scale)
        value_psnr, value_ssim = score_sr(sr, hr, scale)
        rows.append({"name": path.stem, "psnr": value_psnr, "ssim": value_ssim})
    return {
        "dataset": known_sr_dataset(dataset) or str(dataset),
        "hr_dir": str(hr_dir),
        "scale": scale,
        "images": rows,
        "mean_psnr": sum(r["psnr"] for r in rows) / len(rows),
        "mean_ssim": sum(r["ssim"] for r in rows) / len(rows),
    }
