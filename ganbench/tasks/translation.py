"""Unpaired translation tasks: ``mnist2mnistm`` and ``apple2orange`` (CycleGAN-style generators).

``mnist2mnistm`` (:mod:`ganbench.data.mnistm`; needs ``GANBENCH_DATA`` with MNIST and train291):
the first ``n`` MNIST test digits are translated to MNIST-M (domain A -> B) and compared with the
10,000 MNIST-M test images:

* ``fid_target``, ``kid_target``: FID and KID with the FID Inception (when its weights are present,
  unless ``inception = false``), on the first ``inception_samples`` translated digits against a fixed
  subset of as many MNIST-M test images (default 500 a side on the CPU, 10,000 on a GPU; see
  :mod:`ganbench.tasks.features`: FID depends on this ``n``, which is reported with it);
* the quality bar of issue #3, with the MNIST-M domain classifier (``ganbench classifier eval
  mnistm``; 28x28 RGB, trained on MNIST-M train): ``target_acc``, its accuracy on the translated
  digits against their source labels (bar >= 0.8; the untranslated digits already score 0.97, so the
  FID half of the bar is the one that tells); ``fid_domain``, the FID of its 128-d features between
  the translated digits and the 10,000 MNIST-M test images; ``fid_domain_untranslated``, the same FID
  for the untranslated MNIST digits (grey repeated to RGB, as the CycleGAN configs feed them: what the
  identity "translation" scores, a property of the data); and ``fid_domain_ratio``, their quotient
  (bar <= 0.5; exactly 1 for the identity; 0.12 at ``n`` = 5000 for a perfect translator that returns
  the MNIST-M image of each digit, the finite-sample floor: fid_domain 0.72 against 6.17
  untranslated). The three FIDs get their spread from the same disjoint subsets. Ready samples are
  scored against the labels they carry (no ``target_acc`` without) and the first as many MNIST digits;
* digit preservation, with the MNIST classifier, when the model also has the reverse direction
  (CycleGAN's ``G_BA``): ``digit_acc`` is the accuracy on the reverse translation of the MNIST-M test
  images (each holds a known digit), ``cycle_acc`` on the round trip A -> B -> A of the MNIST digits
  (outputs are read as grayscale, the mean of their channels).

``apple2orange`` (its metrics all need the Inception: ``inception = false`` makes it unavailable;
the official CycleGAN images, which the user supplies: ``folder`` or
``GANBENCH_DATA/cyclegan/apple2orange`` with ``testA/`` and ``testB/``; check a copy with ``ganbench
data verify apple2orange FOLDER``): ``fid_a2b``/``kid_a2b`` of the translated test apples against the
test oranges and, with a reverse model, ``fid_b2a``/``kid_b2a``. ``image_size`` resizes the inputs
to the model's training size first (e.g. 128 for seed 002's CycleGAN; the real targets keep their
size). Test sets of about 250 images give FIDs from fewer samples than the Inception's 2,048
dimensions (biased; KID is the better guide).

Both are deterministic (one run whatever the seeds); distribution metrics get the subset spread of
:mod:`ganbench.tasks.base`. Ready samples are the translated images (A -> B only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.data.idx import find_mnist_files, load_mnist
from ganbench.data.images import load_images
from ganbench.data.manifest import SUBSETS
from ganbench.data.mnistm import load_mnistm
from ganbench.data.sr_crops import train291_dir
from ganbench.errors import ConfigError, DataNotFoundError
from ganbench.features.classifier import default_weights_path
from ganbench.generators import SampleSet
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.settings import data_root
from ganbench.tasks import register_task
from ganbench.tasks.base import (
    DISTRIBUTION,
    FRACTION,
    NON_NEGATIVE,
    PER_IMAGE,
    MetricSpec,
    SeedResult,
    Task,
    add_distribution_metrics,
    check_auto_option,
    sample_size_notes,
)
from ganbench.tasks.features import (
    Reference,
    feature_extractor,
    features_of,
    inception_available,
    inception_sample_count,
    reference_features,
    reference_subset,
)
from ganbench.tasks.generation import fid_metric

__all__ = ["MnistToMnistMTask", "AppleToOrangeTask"]

INCEPTION_HINT = "no FID Inception weights (ganbench weights fetch inception)"


def target_metrics(
    result: SeedResult, prefix: str, reference: Reference, fake: torch.Tensor, seed: int, options: dict
) -> None:
    """FID and KID (``fid_<prefix>``, ``kid_<prefix>``) of ``fake`` features against ``reference``."""
    parts = options["spread_subsets"]

    def compute(real_index: np.ndarray, fake_index: np.ndarray) -> dict[str, float]:
        real_f, fake_f = reference.features[real_index], fake[fake_index]
        full = len(real_index) == len(reference.features)
        subsets = options["kid_subsets"] if full else max(1, options["kid_subsets"] // max(1, parts))
        kid = kernel_inception_distance(real_f, fake_f, subsets, options["kid_subset_size"], seed)
        real_stats = reference.stats if full else None
        return {
            f"fid_{prefix}": fid_metric(real_f, fake_f, reference.extractor_id, real_stats),
            f"kid_{prefix}": kid["kid_mean"],
        }

    add_distribution_metrics(result, compute, len(reference.features), len(fake), seed, parts)


def domain_metrics(
    result: SeedResult,
    reference: Reference,
    fake: torch.Tensor,
    untranslated: torch.Tensor,
    seed: int,
    parts: int,
) -> None:
    """``fid_domain`` of ``fake`` features, ``fid_domain_untranslated`` of ``untranslated`` features
    (row ``i`` the input of fake ``i``), both against ``reference``, and ``fid_domain_ratio``, their
    quotient; the spread uses the same subsets for all three."""

    def compute(real_index: np.ndarray, fake_index: np.ndarray) -> dict[str, float]:
        real_f = reference.features[real_index]
        real_stats = reference.stats if len(real_index) == len(reference.features) else None
        fid = fid_metric(real_f, fake[fake_index], reference.extractor_id, real_stats)
        baseline = fid_metric(real_f, untranslated[fake_index], reference.extractor_id, real_stats)
        return {"fid_domain": fid, "fid_domain_untranslated": baseline, "fid_domain_ratio": fid / baseline}

    add_distribution_metrics(result, compute, len(reference.features), len(fake), seed, parts)


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """``uint8 (N, 1 or 3, H, W)`` -> ``(N, 3, H, W)``: grey repeated to the three channels."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8 (N, C, H, W)`` resized to ``size x size`` (bilinear, antialiased, rounded); 0: unchanged."""
    if not size or tuple(images.shape[-2:]) == (size, size):
        return images
    resized = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.round().clamp(0, 255).to(torch.uint8)


def as_gray(images: torch.Tensor) -> torch.Tensor:
    """``uint8 (N, C, H, W)`` -> ``uint8 (N, 1, H, W)``: the rounded mean of the channels."""
    return images.float().mean(dim=1, keepdim=True).round().to(torch.uint8)


@register_task
class MnistToMnistMTask(Task):
    """MNIST -> MNIST-M translation (see the module docstring)."""

    name = "mnist2mnistm"
    description = (
        "MNIST -> MNIST-M translation: target FID/KID (Inception), MNIST-M classifier accuracy and "
        "domain FID ratio, digit preservation (MNIST classifier)"
    )
    accepts = ("image",)
    seeded = False
    defaults = {
        "n": 5000,  # MNIST test digits translated
        "mnistm_seed": 0,
        "inception": None,  # "auto" (default), true or false
        "inception_samples": 0,  # images a side for FID/KID; 0: 500 on the CPU, 10,000 on a GPU
        "inception_weights": "",
        "classifier_weights": "",
        "mnistm_classifier_weights": "",  # the MNIST-M classifier (default: the shipped one)
        "kid_subsets": 100,
        "kid_subset_size": 1000,
        "spread_subsets": 5,
        "batch_size": 100,
        "root": "",
    }

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        check_auto_option(o, "inception", f"task {self.name}")
        if not 2 <= o["n"] <= 10000:
            raise ConfigError(f"task {self.name}: n must be in 2..10000 (MNIST test digits), got {o['n']}")
        if o["inception_samples"] < 0:
            raise ConfigError(
                f"task {self.name}: inception_samples must be >= 0 (0: the device default), "
                f"got {o['inception_samples']}"
            )

    @property
    def use_inception(self) -> bool:
        choice = self.options["inception"]
        return choice is True or (choice == "auto" and inception_available(self.options["inception_weights"]))

    def metric_specs(self) -> list[MetricSpec]:
        specs = []
        if self.use_inception:
            specs += [
                MetricSpec(
                    "fid_target",
                    False,
                    DISTRIBUTION,
                    "FID (Inception) of translated digits vs MNIST-M test",
                    NON_NEGATIVE,
                ),
                MetricSpec(
                    "kid_target", False, DISTRIBUTION, "KID (Inception) of translated digits vs MNIST-M test"
                ),
            ]
        return specs + [
            MetricSpec(
                "target_acc",
                True,
                PER_IMAGE,
                "MNIST-M classifier accuracy on the translated digits (source labels; bar >= 0.8)",
                FRACTION,
            ),
            MetricSpec(
                "fid_domain",
                False,
                DISTRIBUTION,
                "FID (MNIST-M classifier) of translated digits vs MNIST-M test",
                NON_NEGATIVE,
            ),
            MetricSpec(
                "fid_domain_untranslated",
                False,
                DISTRIBUTION,
                "reference: FID (MNIST-M classifier) of the untranslated MNIST digits vs MNIST-M test",
                NON_NEGATIVE,
            ),
            MetricSpec(
                "fid_domain_ratio",
                False,
                DISTRIBUTION,
                "fid_domain / fid_domain_untranslated (bar <= 0.5)",
                NON_NEGATIVE,
            ),
            MetricSpec(
                "digit_acc",
                True,
                PER_IMAGE,
                "MNIST classifier accuracy on MNIST-M test translated back (B -> A)",
                FRACTION,
            ),
            MetricSpec(
                "cycle_acc",
                True,
                PER_IMAGE,
                "MNIST classifier accuracy on the round trip A -> B -> A",
                FRACTION,
            ),
        ]

    def unavailable(self) -> str | None:
        root = self.options["root"] or None
        try:
            find_mnist_files("mnist", "test", root)
            train291_dir(root)
        except DataNotFoundError as exc:
            return f"MNIST-M needs MNIST and train291: {exc}"
        if self.options["inception"] is True and not inception_available(self.options["inception_weights"]):
            return f"inception = true but {INCEPTION_HINT}"
        for name, option in (("mnist", "classifier_weights"), ("mnistm", "mnistm_classifier_weights")):
            weights = Path(self.options[option] or default_weights_path(name))
            if not weights.is_file():
                return f"no {name} classifier weights at {weights}"
        return None

    def holdout(self) -> SampleSet:
        images, labels = load_mnistm("train", self.options["mnistm_seed"], self.options["root"] or None)
        return SampleSet(
            images,
            labels,
            name="real-data",
            source={"format": "builtin", "name": "real-data", "data": "MNIST-M training split"},
        )

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        o = self.options
        root, n = o["root"] or None, o["n"]
        digits, labels = load_mnist("mnist", "test", root)
        digits, labels = digits[:n, None], labels[:n]
        target, target_labels = load_mnistm("test", o["mnistm_seed"], root)
        if isinstance(source, SampleSet):
            fakes, fake_labels = source.select(n, seed)
        else:
            fakes, fake_labels = source.translate(digits, o["batch_size"], progress), labels
        result = SeedResult(counts={"n_real": len(target), "n_fake": len(fakes)})
        untranslated = as_rgb(digits[: len(fakes)])
        self._domain_metrics(result, as_rgb(fakes), fake_labels, untranslated, target, seed, device, progress)
        with sample_size_notes(result.notes):
            if self.use_inception:
                m = inception_sample_count(o["inception_samples"], device, min(len(target), len(fakes)))
                inception = feature_extractor("inception", o["inception_weights"], device)
                reference = reference_features(inception, reference_subset(target, m), device, progress)
                result.extractors["inception"] = inception.extractor_id
                result.counts["n_inception"] = m
                target_metrics(
                    result, "target", reference, features_of(inception, fakes[:m], device, progress), seed, o
                )
        reverse = None if isinstance(source, SampleSet) else source.reverse
        if reverse is None:
            result.notes.append("digit_acc, cycle_acc: the model has no reverse (B -> A) generator")
            return result
        classifier = feature_extractor("mnist", o["classifier_weights"], device)
        result.extractors["domain"] = classifier.extractor_id
        back = as_gray(reverse.translate(target[:n], o["batch_size"], progress))
        result.per_image["digit_acc"] = (
            (classifier.logits(back).argmax(1).cpu() == target_labels[:n]).double().numpy()
        )
        cycle = as_gray(reverse.translate(fakes, o["batch_size"], progress))
        result.per_image["cycle_acc"] = (classifier.logits(cycle).argmax(1).cpu() == labels).double().numpy()
        return result

    def _domain_metrics(
        self,
        result: SeedResult,
        fakes: torch.Tensor,
        fake_labels: torch.Tensor | None,
        untranslated: torch.Tensor,
        target: torch.Tensor,
        seed: int,
        device: str,
        progress: bool,
    ) -> None:
        """``target_acc`` and the ``fid_domain*`` metrics with the MNIST-M classifier (module docstring)."""
        o = self.options
        classifier = feature_extractor("mnistm", o["mnistm_classifier_weights"], device)
        result.extractors["domain_mnistm"] = classifier.extractor_id
        if fake_labels is None:
            result.notes.append("target_acc: the samples carry no labels")
        else:
            predicted = classifier.logits(fakes).argmax(1).cpu()
            result.per_image["target_acc"] = (predicted == fake_labels.cpu()).double().numpy()
        with sample_size_notes(result.notes):
            domain_metrics(
                result,
                reference_features(classifier, target, device, progress),
                features_of(classifier, fakes, device, progress),
                reference_features(classifier, untranslated, device, progress).features,
                seed,
                o["spread_subsets"],
            )

    def latency_inputs(self, generator, batch_size: int) -> tuple:
        """A 28x28 RGB batch (padded to the generator's multiple)."""
        return generator.example_inputs(batch_size, (3, 28, 28))


@register_task
class AppleToOrangeTask(Task):
    """apple2orange translation with the user's copy of the CycleGAN data (see the module docstring)."""

    name = "apple2orange"
    description = "apple <-> orange translation (user-supplied data): FID/KID (Inception) per direction"
    accepts = ("image",)
    seeded = False
    defaults = {
        "folder": "",  # holds testA/ and testB/ (default: GANBENCH_DATA/cyclegan/apple2orange)
        "inception": None,  # "auto" (default) or true: needed; false: skip the task (Inception metrics only)
        "inception_weights": "",
        "kid_subsets": 100,
        "kid_subset_size": 1000,
        "spread_subsets": 5,
        "batch_size": 8,
        "image_size": 0,  # resize the inputs to this square size first (the model's training size); 0: as is
    }

    def __init__(self, **options):
        super().__init__(**options)
        check_auto_option(self.options, "inception", f"task {self.name}")

    def metric_specs(self) -> list[MetricSpec]:
        return [
            MetricSpec(
                "fid_a2b",
                False,
                DISTRIBUTION,
                "FID (Inception): apples translated to oranges vs test oranges",
                NON_NEGATIVE,
            ),
            MetricSpec("kid_a2b", False, DISTRIBUTION, "KID (Inception): apples -> oranges vs test oranges"),
            MetricSpec(
                "fid_b2a",
                False,
                DISTRIBUTION,
                "FID (Inception): oranges translated to apples vs test apples",
                NON_NEGATIVE,
            ),
            MetricSpec("kid_b2a", False, DISTRIBUTION, "KID (Inception): oranges -> apples vs test apples"),
        ]

    def folder(self) -> Path:
        """The folder holding ``testA/`` and ``testB/`` (raises :class:`DataNotFoundError`)."""
        base = (
            Path(self.options["folder"]).expanduser() if self.options["folder"] else data_root() / "cyclegan"
        )
        for candidate in (base, base / "apple2orange"):
            if all((candidate / s).is_dir() for s in ("testA", "testB")):
                return candidate
        raise DataNotFoundError(
            f"apple2orange not found in {str(base)!r}: the images are not distributed with ganbench; put "
            f"the official {'/, '.join(SUBSETS)}/ folders there (check them with `ganbench data verify "
            "apple2orange FOLDER`) or set the task's folder option"
        )

    def unavailable(self) -> str | None:
        try:
            self.folder()
        except DataNotFoundError as exc:
            return str(exc)
        if self.options["inception"] is False:
            return "inception = false, and every apple2orange metric needs the FID Inception"
        if not inception_available(self.options["inception_weights"]):
            return INCEPTION_HINT
        return None

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        o = self.options
        folder = self.folder()
        apples, oranges = load_images(folder / "testA"), load_images(folder / "testB")
        inception = feature_extractor("inception", o["inception_weights"], device)
        result = SeedResult(extractors={"inception": inception.extractor_id})
        directions = [("a2b", apples, oranges, source)]
        if not isinstance(source, SampleSet) and source.reverse is not None:
            directions.append(("b2a", oranges, apples, source.reverse))
        with sample_size_notes(result.notes):
            for prefix, inputs, targets, model in directions:
                if isinstance(model, SampleSet):
                    fakes = model.images
                else:
                    fakes = model.translate(resize_square(inputs, o["image_size"]), o["batch_size"], progress)
                reference = reference_features(inception, targets, device, progress)
                target_metrics(
                    result, prefix, reference, features_of(inception, fakes, device, progress), seed, o
                )
                result.counts.update({f"n_real_{prefix}": len(targets), f"n_fake_{prefix}": len(fakes)})
        if len(directions) == 1:
            result.notes.append("fid_b2a, kid_b2a: no reverse (B -> A) generator")
        return result

    def latency_inputs(self, generator, batch_size: int) -> tuple:
        """A 256x256 RGB batch (the data set's image size)."""
        return generator.example_inputs(batch_size, (3, 256, 256))
