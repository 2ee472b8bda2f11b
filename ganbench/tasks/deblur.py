"""``deblur``: motion deblurring on blurred BSD100 and on the two real blur pairs.

Test sets (:mod:`ganbench.data.blur`): the 100 BSD100 images, each blurred by its own camera-shake
kernel drawn from ``blur_seed`` (DeblurGAN's blur model), and the real aligned pairs Flower and
Istanbul (DeepDeblur frames, 1280x720). Per image, on RGB ``uint8`` (no border removed):

* ``<set>_psnr``, ``<set>_ssim``: the restored image against the sharp one;
* ``<set>_psnr_gain``, ``<set>_ssim_gain``: the same minus the blurred input's own PSNR/SSIM (what the
  model adds; 0 for the identity).

``<set>`` is ``bsd100`` or ``real``. Means over images with bootstrap intervals (the real set has only
two images: its interval says little). Ready samples: a folder with ``bsd100/`` and ``real/``
sub-folders holding restored images named like the pairs (BSD100 file stems, ``Flower``, ``Istanbul``).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ganbench.data.blur import BlurPair, blurred_bsd100, real_blur_pairs
from ganbench.errors import DataNotFoundError, ImageSizeMismatchError
from ganbench.generators import SampleSet
from ganbench.metrics.image import psnr, ssim
from ganbench.settings import data_root
from ganbench.tasks import register_task
from ganbench.tasks.base import PER_IMAGE, MetricSpec, SeedResult, Task

__all__ = ["DeblurTask"]


@register_task
class DeblurTask(Task):
    """Deblurring of synthetic (BSD100) and real motion blur (see the module docstring)."""

    name = "deblur"
    description = (
        "motion deblurring: PSNR/SSIM and gain over the blurred input (blurred BSD100, 2 real pairs)"
    )
    accepts = ("image",)
    seeded = False
    defaults = {
        "blur_seed": 0,  # seed of the BSD100 blur kernels (0: the standard set)
        "limit": 0,  # only the first `limit` BSD100 images (0: all 100)
        "real_pairs": True,  # also score the two real pairs
        "root": "",  # data root (default: $GANBENCH_DATA)
    }

    def __init__(self, **options):
        super().__init__(**options)
        self._pairs: dict[str, list[BlurPair]] | None = None

    def sets(self) -> list[str]:
        return ["bsd100", "real"] if self.options["real_pairs"] else ["bsd100"]

    def metric_specs(self) -> list[MetricSpec]:
        titles = {"bsd100": "blurred BSD100", "real": "real blur pairs"}
        specs = []
        for key in self.sets():
            title = titles[key]
            specs += [
                MetricSpec(f"{key}_psnr", True, PER_IMAGE, f"{title}: PSNR (dB), RGB"),
                MetricSpec(f"{key}_ssim", True, PER_IMAGE, f"{title}: SSIM, RGB", (-1.0, 1.0)),
                MetricSpec(
                    f"{key}_psnr_gain", True, PER_IMAGE, f"{title}: PSNR minus the blurred input's (dB)"
                ),
                MetricSpec(f"{key}_ssim_gain", True, PER_IMAGE, f"{title}: SSIM minus the blurred input's"),
            ]
        return specs

    def unavailable(self) -> str | None:
        try:
            root = data_root(self.options["root"] or None)
        except DataNotFoundError as exc:
            return str(exc)
        needed = [root / "sr/BSD100/HR"] + (
            [root / "deblur/real_pairs"] if self.options["real_pairs"] else []
        )
        missing = [str(p) for p in needed if not p.is_dir()]
        return f"missing deblurring data: {', '.join(missing)}" if missing else None

    def pairs(self) -> dict[str, list[BlurPair]]:
        """The test pairs per set (made once per task instance: blurring BSD100 takes a few seconds)."""
        if self._pairs is None:
            root = self.options["root"] or None
            self._pairs = {
                "bsd100": blurred_bsd100(self.options["blur_seed"], root, limit=self.options["limit"] or None)
            }
            if self.options["real_pairs"]:
                self._pairs["real"] = real_blur_pairs(root)
        return self._pairs

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        result = SeedResult()
        for key, pairs in self.pairs().items():
            values: dict[str, list[float]] = {}
            for pair in tqdm(pairs, desc=f"{self.name} {key}", disable=not progress, leave=False):
                if isinstance(source, SampleSet):
                    restored = source.named_image(key, pair.name)
                else:
                    restored = source.translate(pair.blurred[None], batch_size=1)[0]
                if restored.shape != pair.sharp.shape:
                    raise ImageSizeMismatchError(
                        f"{key}/{pair.name}: output {tuple(restored.shape)}, sharp {tuple(pair.sharp.shape)}"
                    )
                for name, function in (("psnr", psnr), ("ssim", ssim)):
                    value = float(function(restored, pair.sharp, data_range=255.0))
                    baseline = float(function(pair.blurred, pair.sharp, data_range=255.0))
                    values.setdefault(f"{key}_{name}", []).append(value)
                    values.setdefault(f"{key}_{name}_gain", []).append(value - baseline)
            result.per_image.update({name: np.asarray(v) for name, v in values.items()})
            result.counts[f"n_{key}"] = len(pairs)
        return result

    def latency_inputs(self, generator, batch_size: int) -> tuple:
        """A 256x256 RGB batch (DeblurGAN's training crop size)."""
        return generator.example_inputs(batch_size, (3, 256, 256))
