"""``sr-x4``: x4 super-resolution on Set5, Set14 and BSD100, in the published convention.

Per image (the protocol of :mod:`ganbench.sr`): the HR image is cropped to a multiple of 4, ``LR =
imresize(HR, 1/4)`` (MATLAB bicubic, ``uint8``), the generator's ``uint8`` output is compared with HR:

* ``<set>_psnr_y``, ``<set>_ssim_y``: BT.601 Y channel (MATLAB ``rgb2ycbcr``), 4-pixel border removed:
  the convention of SRGAN's Table 2 and the SR literature;
* ``<set>_psnr_rgb``, ``<set>_ssim_rgb``: all three channels, 4-pixel border removed;
* ``<set>_vgg``: VGG perceptual distance (:func:`ganbench.metrics.perceptual.perceptual_distance`, SRGAN's
  VGG54 layer by default) when VGG weights are found (``vgg = "auto"``) or asked for.

Grayscale test images (two in Set14) are scored as RGB with three equal channels, as BasicSR reads
them. Each metric is the mean over the set's images with a bootstrap interval; the evaluation is
deterministic (one run whatever the seeds). Ready samples are a folder with ``Set5/``, ``Set14/``,
``BSD100/`` sub-folders holding outputs named like the HR files. SRGAN's Table 2 (bicubic, SRResNet,
SRGAN) is in ``ganbench/published.toml``, shown next to measured rows in leaderboards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganbench.data.images import list_images, mod_crop, read_image
from ganbench.errors import ConfigError, DataNotFoundError, ImageSizeMismatchError, WeightsNotFoundError
from ganbench.features.vgg import default_vgg_weights, parse_network
from ganbench.generators import SampleSet
from ganbench.imresize import imresize
from ganbench.metrics.image import psnr, ssim
from ganbench.sr import SR_DATASETS, known_sr_dataset, sr_dataset_dir
from ganbench.tasks import register_task
from ganbench.tasks.base import NON_NEGATIVE, PER_IMAGE, MetricSpec, SeedResult, Task, check_auto_option

__all__ = ["SuperResolutionTask"]

SCALE = 4


@register_task
class SuperResolutionTask(Task):
    """x4 super-resolution on the standard test sets (see the module docstring)."""

    name = "sr-x4"
    description = "x4 super-resolution on Set5/Set14/BSD100: PSNR/SSIM (Y and RGB), VGG distance"
    accepts = ("image",)
    seeded = False
    defaults = {
        "datasets": ["Set5", "Set14", "BSD100"],
        "vgg": None,  # "auto" (default), true or false
        "vgg_network": "vgg19_relu5_4",
        "vgg_weights": "",
        "limit": 0,  # score only the first `limit` images of each set (0: all)
        "root": "",  # data root (default: $GANBENCH_DATA)
    }

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        check_auto_option(o, "vgg", f"task {self.name}")
        unknown = [d for d in o["datasets"] if known_sr_dataset(d) is None]
        if unknown or not o["datasets"]:
            raise ConfigError(
                f"task {self.name}: datasets must be among {', '.join(SR_DATASETS)}, got {o['datasets']}"
            )
        o["datasets"] = [known_sr_dataset(d) for d in o["datasets"]]
        parse_network(o["vgg_network"])

    @property
    def use_vgg(self) -> bool:
        """Whether the VGG distance is computed (asked for, or ``auto`` and the weights are found)."""
        choice = self.options["vgg"]
        return choice is True or (choice == "auto" and self._vgg_weights() is not None)

    def _vgg_weights(self) -> str | None:
        if self.options["vgg_weights"]:
            return self.options["vgg_weights"]
        try:
            return str(default_vgg_weights(parse_network(self.options["vgg_network"])[0]))
        except WeightsNotFoundError:
            return None

    def metric_specs(self) -> list[MetricSpec]:
        specs = []
        for dataset in self.options["datasets"]:
            key = dataset.lower()
            specs += [
                MetricSpec(
                    f"{key}_psnr_y", True, PER_IMAGE, f"{dataset}: PSNR (dB), Y channel, 4-px border removed"
                ),
                MetricSpec(
                    f"{key}_ssim_y",
                    True,
                    PER_IMAGE,
                    f"{dataset}: SSIM, Y channel, 4-px border removed",
                    (-1.0, 1.0),
                ),
                MetricSpec(
                    f"{key}_psnr_rgb", True, PER_IMAGE, f"{dataset}: PSNR (dB), RGB, 4-px border removed"
                ),
                MetricSpec(
                    f"{key}_ssim_rgb",
                    True,
                    PER_IMAGE,
                    f"{dataset}: SSIM, RGB, 4-px border removed",
                    (-1.0, 1.0),
                ),
            ]
            if self.use_vgg:
                specs.append(
                    MetricSpec(
                        f"{key}_vgg",
                        False,
                        PER_IMAGE,
                        f"{dataset}: VGG distance ({self.options['vgg_network']})",
                        NON_NEGATIVE,
                    )
                )
        return specs

    def unavailable(self) -> str | None:
        for dataset in self.options["datasets"]:
            try:
                sr_dataset_dir(dataset, self.options["root"] or None)
            except DataNotFoundError as exc:
                return f"no {dataset} HR images: {exc}"
        if self.options["vgg"] is True and self._vgg_weights() is None:
            return "vgg = true but no VGG weights found (ganbench weights fetch vgg19)"
        return None

    def test_images(self, dataset: str) -> list[Path]:
        """The HR files of ``dataset`` (the first ``limit`` if set)."""
        files = list_images(sr_dataset_dir(dataset, self.options["root"] or None))
        return files[: self.options["limit"]] if self.options["limit"] else files

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        result = SeedResult()
        use_vgg = self.use_vgg
        for dataset in self.options["datasets"]:
            key = dataset.lower()
            values: dict[str, list[float]] = {}
            files = self.test_images(dataset)
            for path in tqdm(files, desc=f"{self.name} {dataset}", disable=not progress, leave=False):
                hr = read_image(path)
                hr = mod_crop(hr.expand(3, -1, -1), SCALE)
                if isinstance(source, SampleSet):
                    sr = source.named_image(dataset, path.stem)
                else:
                    sr = source.translate(imresize(hr, 1.0 / SCALE)[None])[0]
                if sr.shape != hr.shape:
                    raise ImageSizeMismatchError(
                        f"{dataset}/{path.stem}: output {tuple(sr.shape)}, HR (cropped to a multiple of 4) "
                        f"{tuple(hr.shape)}"
                    )
                for name, value in self._image_metrics(sr, hr, use_vgg, device).items():
                    values.setdefault(f"{key}_{name}", []).append(value)
            result.per_image.update({name: np.asarray(v) for name, v in values.items()})
            result.counts[f"n_{key}"] = len(files)
        if use_vgg:
            result.extractors["vgg"] = f"{self.options['vgg_network']}/{Path(self._vgg_weights()).name}"
        return result

    def _image_metrics(
        self, sr: torch.Tensor, hr: torch.Tensor, use_vgg: bool, device: str
    ) -> dict[str, float]:
        """PSNR/SSIM (Y and RGB) and, if asked, the VGG distance of one ``uint8 (3, H, W)`` pair."""
        y = {"data_range": 255.0, "crop_border": SCALE, "y_channel": True}
        rgb = {"data_range": 255.0, "crop_border": SCALE}
        values = {
            "psnr_y": float(psnr(sr, hr, **y)),
            "ssim_y": float(ssim(sr, hr, **y)),
            "psnr_rgb": float(psnr(sr, hr, **rgb)),
            "ssim_rgb": float(ssim(sr, hr, **rgb)),
        }
        if use_vgg:
            from ganbench.metrics.perceptual import perceptual_distance

            pair = [x[None].to(device, torch.float32) / 255.0 for x in (sr, hr)]
            values["vgg"] = float(
                perceptual_distance(*pair, network=self.options["vgg_network"], weights=self._vgg_weights())
            )
        return values

    def latency_inputs(self, generator, batch_size: int) -> tuple:
        """A 64x64 RGB low-resolution batch (256x256 outputs)."""
        return generator.example_inputs(batch_size, (3, 64, 64))
