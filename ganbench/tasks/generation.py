"""Image generation tasks: ``mnist``, ``fashion`` (unconditional), ``mnist-cond``, ``fashion-cond``.

Protocol, per seed:

* **reference**: the data set's 10,000 test images (``reference = "test"``, needs ``GANBENCH_DATA``),
  or, for ``mnist`` offline, the first 1,000 images of the embedded MNIST sample (``"embedded"``);
* **samples**: ``n`` images drawn from latents of the seed (a conditional model gets the classes
  ``0, 1, ..., 9, 0, 1, ...``, so every class has ``n / 10`` samples); ready samples are a seeded subset
  of ``n`` (all of them when there are fewer);
* **metrics** with the domain classifier (:mod:`ganbench.features.classifier`: 128-d features, 10
  logits): FID, KID, Inception Score (of the classifier's logits), improved precision and recall (k=3);
  with the FID Inception weights present (``inception = "auto"``) or asked for (``true``), also the
  standard Inception FID (``fid_inception``), on its own smaller sample: the first
  ``inception_samples`` of the ``n`` samples against a fixed subset of as many reference images
  (default 500 a side on the CPU, 10,000 on a GPU; :mod:`ganbench.tasks.features`). FID depends on
  the sample size: ``fid_inception`` comes with its ``n`` (and the ``n_inception`` count), and
  compares only with FIDs of the same ``n``. ``inception = false`` skips it. The conditional tasks
  add the class accuracy (the classifier's prediction equals the requested class; per image) and the
  intra-class FID (the mean over classes of the FID between the class's samples and the class's
  reference images).

The "real data" baseline (``builtin:real-data``) scores real images that are not in the reference:
the training split (``"test"`` reference) or the embedded sample's second half (``"embedded"``).
Intervals: see :mod:`ganbench.tasks.base`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ganbench.data.idx import find_mnist_files, load_mnist
from ganbench.data.sample import load_embedded_sample
from ganbench.errors import (
    CheckpointError,
    ConfigError,
    DataNotFoundError,
    SampleSizeWarning,
    TooFewSamplesError,
)
from ganbench.features.classifier import default_weights_path
from ganbench.generators import SampleSet
from ganbench.metrics.frechet import FeatureStats, fid_from_stats
from ganbench.metrics.inception_score import inception_score
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.metrics.precision_recall import precision_recall
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
    feature_extractor,
    features_of,
    inception_available,
    inception_sample_count,
    reference_features,
    reference_subset,
)

__all__ = ["GenerationTask", "ConditionalGenerationTask"]

NUM_CLASSES = 10
EMBEDDED_REFERENCE = 1000  # the embedded sample's first half is the reference, the second half held out
DATASET_TITLES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}


def fid_metric(
    real: torch.Tensor, fake: torch.Tensor, extractor_id: str, real_stats: FeatureStats | None = None
) -> float:
    """FID of two feature matrices (``real_stats``: precomputed statistics of ``real``)."""
    real_stats = real_stats if real_stats is not None else FeatureStats.from_features(real, extractor_id)
    return fid_from_stats(real_stats, FeatureStats.from_features(fake, extractor_id))["fid"]


class GenerationTask(Task):
    """Unconditional generation of 28x28 grayscale images (see the module docstring)."""

    dataset = "mnist"
    accepts = ("noise", "conditional")
    seeded = True
    defaults = {
        "n": 10000,  # samples per seed
        "reference": "test",  # "test" (GANBENCH_DATA) or "embedded" (mnist only, offline)
        "inception": None,  # "auto" (default), true or false: add the Inception FID
        "inception_samples": 0,  # images a side for the Inception FID; 0: 500 on the CPU, 10,000 on a GPU
        "inception_weights": "",
        "classifier_weights": "",
        "kid_subsets": 100,
        "kid_subset_size": 1000,
        "pr_k": 3,
        "is_splits": 10,
        "spread_subsets": 5,  # K disjoint subsets for the one-seed interval
        "batch_size": 500,
    }

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o["reference"] not in ("test", "embedded"):
            raise ConfigError(
                f"task {self.name}: reference must be 'test' or 'embedded', got {o['reference']!r}"
            )
        if o["reference"] == "embedded" and self.dataset != "mnist":
            raise ConfigError(
                f"task {self.name}: the embedded sample holds MNIST only; use reference = 'test'"
            )
        check_auto_option(o, "inception", f"task {self.name}")
        if o["n"] < 2 or o["spread_subsets"] < 0 or o["batch_size"] < 1 or o["inception_samples"] < 0:
            raise ConfigError(
                f"task {self.name}: need n >= 2, spread_subsets >= 0, batch_size >= 1, "
                "inception_samples >= 0 (0: the device default)"
            )

    # ---------------------------------------------------------------------------------- declarations

    @property
    def use_inception(self) -> bool:
        """Whether the Inception FID is computed (asked for, or ``auto`` and the weights are here)."""
        choice = self.options["inception"]
        return choice is True or (choice == "auto" and inception_available(self.options["inception_weights"]))

    def metric_specs(self) -> list[MetricSpec]:
        title = DATASET_TITLES[self.dataset]
        specs = [
            MetricSpec(
                "fid", False, DISTRIBUTION, f"FID with the {title} classifier's 128-d features", NON_NEGATIVE
            ),
            MetricSpec(
                "kid", False, DISTRIBUTION, "KID (unbiased MMD², cubic kernel) with the classifier's features"
            ),
            MetricSpec(
                "is", True, DISTRIBUTION, "Inception Score of the classifier's 10 logits", (1.0, NUM_CLASSES)
            ),
            MetricSpec(
                "precision", True, DISTRIBUTION, "improved precision (k=3), classifier features", FRACTION
            ),
            MetricSpec("recall", True, DISTRIBUTION, "improved recall (k=3), classifier features", FRACTION),
        ]
        if self.use_inception:
            specs.append(
                MetricSpec(
                    "fid_inception",
                    False,
                    DISTRIBUTION,
                    "FID with the FID Inception (pool_3), inception_samples images a side",
                    NON_NEGATIVE,
                )
            )
        return specs

    def unavailable(self) -> str | None:
        o = self.options
        if o["reference"] == "test":
            try:
                find_mnist_files(self.dataset, "test")
            except DataNotFoundError as exc:
                return f"no {DATASET_TITLES[self.dataset]} test data: {exc}"
        weights = Path(o["classifier_weights"] or default_weights_path(self.dataset))
        if not weights.is_file():
            hint = f"ganbench classifier train {self.dataset}"
            return f"no {self.dataset} classifier weights at {weights} ({hint})"
        if o["inception"] is True and not inception_available(o["inception_weights"]):
            return "inception = true but no FID Inception weights (ganbench weights fetch inception)"
        return None

    # ---------------------------------------------------------------------------------------- data

    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference images ``uint8 (N, 1, 28, 28)`` and labels."""
        if self.options["reference"] == "embedded":
            images, labels = load_embedded_sample()
            return images[:EMBEDDED_REFERENCE, None], labels[:EMBEDDED_REFERENCE]
        images, labels = load_mnist(self.dataset, "test")
        return images[:, None], labels

    def holdout(self) -> SampleSet:
        if self.options["reference"] == "embedded":
            images, labels = load_embedded_sample()
            source = "embedded MNIST sample, second half"
            images, labels = images[EMBEDDED_REFERENCE:, None], labels[EMBEDDED_REFERENCE:]
        else:
            images, labels = load_mnist(self.dataset, "train")
            source = f"{DATASET_TITLES[self.dataset]} training split"
            images = images[:, None]
        return SampleSet(
            images,
            labels,
            name="real-data",
            source={"format": "builtin", "name": "real-data", "data": source},
        )

    def class_labels(self, n: int) -> torch.Tensor:
        """The classes asked of a conditional generator: ``0, 1, ..., 9, 0, 1, ...``."""
        return torch.arange(n) % NUM_CLASSES

    def samples(self, source, seed: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples of ``source`` for ``seed`` and the classes they were drawn for (if known)."""
        n = self.options["n"]
        if isinstance(source, SampleSet):
            return source.select(n, seed)
        if source.kind == "conditional":
            if source.num_classes != NUM_CLASSES:
                raise CheckpointError(
                    f"{source.name} has {source.num_classes} classes; {self.name} has {NUM_CLASSES}"
                )
            labels = self.class_labels(n)
            return source.sample(n, seed, labels, self.options["batch_size"], progress), labels
        return source.sample(n, seed, batch_size=self.options["batch_size"], progress=progress), None

    # ------------------------------------------------------------------------------------- scoring

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        o = self.options
        real_images, real_labels = self.reference()
        fake_images, fake_labels = self.samples(source, seed, progress)
        classifier = feature_extractor(self.dataset, o["classifier_weights"], device)
        real = reference_features(classifier, real_images, device, progress)
        fake = features_of(classifier, fake_images, device, progress)
        logits = classifier.logits(fake_images).cpu()
        result = SeedResult(
            counts={"n_real": len(real_images), "n_fake": len(fake_images)},
            extractors={"domain": classifier.extractor_id},
        )
        parts = o["spread_subsets"]
        with sample_size_notes(result.notes):
            add_distribution_metrics(
                result,
                lambda r, f: self._domain_metrics(real, fake, logits, r, f, seed),
                len(real_images),
                len(fake_images),
                seed,
                parts,
            )
            if self.use_inception:
                self._inception_metrics(result, real_images, fake_images, seed, device, progress)
            self._conditional_metrics(result, real, real_labels, fake, logits, fake_labels, seed)
        return result

    def _inception_metrics(
        self,
        result: SeedResult,
        real_images: torch.Tensor,
        fake_images: torch.Tensor,
        seed: int,
        device: str,
        progress: bool,
    ) -> None:
        """``fid_inception`` of the first ``m`` samples against ``m`` reference images (a fixed subset)."""
        o = self.options
        m = inception_sample_count(o["inception_samples"], device, min(len(real_images), len(fake_images)))
        inception = feature_extractor("inception", o["inception_weights"], device)
        real = reference_features(inception, reference_subset(real_images, m), device, progress)
        fake = features_of(inception, fake_images[:m], device, progress)
        result.extractors["inception"] = inception.extractor_id
        result.counts["n_inception"] = m
        add_distribution_metrics(
            result,
            lambda r, f: {"fid_inception": self._fid(real, fake, r, f)},
            m,
            m,
            seed,
            o["spread_subsets"],
        )

    @staticmethod
    def _fid(reference, fake: torch.Tensor, real_index: np.ndarray, fake_index: np.ndarray) -> float:
        """FID of the indexed reference and fake features (the full reference's statistics are cached)."""
        everything = len(real_index) == len(reference.features)
        real_stats = reference.stats if everything else None
        return fid_metric(
            reference.features[real_index], fake[fake_index], reference.extractor_id, real_stats
        )

    def _domain_metrics(
        self,
        reference,
        fake: torch.Tensor,
        logits: torch.Tensor,
        real_index: np.ndarray,
        fake_index: np.ndarray,
        seed: int,
    ) -> dict[str, float]:
        """FID, KID, IS, precision and recall of the indexed samples (classifier features)."""
        o = self.options
        real_f, fake_f = reference.features[real_index], fake[fake_index]
        full = len(fake_index) == len(fake)
        kid_subsets = o["kid_subsets"] if full else max(1, o["kid_subsets"] // max(1, o["spread_subsets"]))
        kid = kernel_inception_distance(real_f, fake_f, kid_subsets, o["kid_subset_size"], seed)
        splits = o["is_splits"] if full else 1
        pr = precision_recall(real_f, fake_f, o["pr_k"])
        return {
            "fid": self._fid(reference, fake, real_index, fake_index),
            "kid": kid["kid_mean"],
            "is": inception_score(logits[fake_index], splits, seed)["is_mean"],
            "precision": pr["precision"],
            "recall": pr["recall"],
        }

    def _conditional_metrics(self, result, real, real_labels, fake, logits, fake_labels, seed) -> None:
        """Nothing for the unconditional tasks (see :class:`ConditionalGenerationTask`)."""


class ConditionalGenerationTask(GenerationTask):
    """Class-conditional generation: the unconditional metrics plus class accuracy and intra-class FID."""

    accepts = ("conditional",)

    def metric_specs(self) -> list[MetricSpec]:
        title = DATASET_TITLES[self.dataset]
        conditional = [
            MetricSpec(
                "class_acc", True, PER_IMAGE, f"the {title} classifier predicts the requested class", FRACTION
            ),
            MetricSpec(
                "intra_fid",
                False,
                DISTRIBUTION,
                "mean over classes of the per-class FID (classifier features)",
                NON_NEGATIVE,
            ),
        ]
        return conditional + super().metric_specs()

    def samples(self, source, seed: int, progress: bool):
        images, labels = super().samples(source, seed, progress)
        if labels is None:
            raise CheckpointError(
                f"{self.name} needs class labels: samples must come with 'labels' (npz key)"
            )
        return images, labels

    def _conditional_metrics(self, result, real, real_labels, fake, logits, fake_labels, seed) -> None:
        result.per_image["class_acc"] = (logits.argmax(dim=1) == fake_labels).double().numpy()

        def intra_fid(real_index: np.ndarray, fake_index: np.ndarray) -> dict[str, float]:
            values = []
            with warnings.catch_warnings():  # one note below instead of one warning per class
                warnings.simplefilter("ignore", SampleSizeWarning)
                for c in range(NUM_CLASSES):
                    real_c = real_index[(real_labels[real_index] == c).numpy()]
                    fake_c = fake_index[(fake_labels[fake_index] == c).numpy()]
                    if len(real_c) < 2 or len(fake_c) < 2:
                        raise TooFewSamplesError(
                            f"intra-class FID: class {c} has {len(real_c)} real, {len(fake_c)} fake samples"
                        )
                    values.append(fid_metric(real.features[real_c], fake[fake_c], real.extractor_id))
            return {"intra_fid": float(np.mean(values))}

        add_distribution_metrics(
            result, intra_fid, len(real.features), len(fake), seed, self.options["spread_subsets"]
        )
        smallest = min(int((real_labels == c).sum()) for c in range(NUM_CLASSES))
        smallest = min(smallest, *(int((fake_labels == c).sum()) for c in range(NUM_CLASSES)))
        if smallest < real.features.shape[1]:
            result.notes.append(
                f"intra_fid: the smallest class has {smallest} samples for "
                f"{real.features.shape[1]}-d features; "
                "per-class FIDs from fewer samples than dimensions are biased upward"
            )


@register_task
class MnistTask(GenerationTask):
    name = "mnist"
    dataset = "mnist"
    description = "unconditional MNIST: FID/KID/IS/precision/recall (MNIST classifier), Inception FID"


@register_task
class FashionTask(GenerationTask):
    name = "fashion"
    dataset = "fashion"
    description = (
        "unconditional Fashion-MNIST: FID/KID/IS/precision/recall (Fashion classifier), Inception FID"
    )


@register_task
class MnistConditionalTask(ConditionalGenerationTask):
    name = "mnist-cond"
    dataset = "mnist"
    description = "class-conditional MNIST: class accuracy, intra-class FID, and the mnist metrics"


@register_task
class FashionConditionalTask(ConditionalGenerationTask):
    name = "fashion-cond"
    dataset = "fashion"
    description = "class-conditional Fashion-MNIST: class accuracy, intra-class FID, and the fashion metrics"
