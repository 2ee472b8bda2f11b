"""What every task shares: metric declarations, per-seed results, uncertainty intervals, options.

A task evaluates a generator (or ready samples) once per seed and returns a :class:`SeedResult`;
:func:`summarize` turns the results of all seeds into one :class:`MetricValue` per metric, each with a
95% interval:

* **per-image metrics** (PSNR, SSIM, class accuracy, ...): the mean over all images of all seeds, and
  the percentile bootstrap interval of that mean (:func:`bootstrap_interval`, 2,000 resamples, seeded);
* **distribution metrics** (FID, KID, IS, precision/recall, ...) with two or more seeds: the mean over
  seeds and the Student-t interval of that mean (:func:`t_interval`);
* **distribution metrics with one seed**: the value on the whole sample, and an interval from the
  spread over ``K`` disjoint sample subsets. The metric is computed on ``K`` disjoint pairs of (real,
  fake) subsets of ``n / K`` samples each; the variance of these estimators falls roughly like ``1 / n``,
  so the standard deviation of the whole-sample value is estimated as ``sd(subsets) / sqrt(K)`` and the
  interval is ``value ± t(0.975, K - 1) * sd(subsets) / sqrt(K)``. It is an approximation (the subset
  values also carry a larger small-sample bias, which does not enter their spread); with several seeds
  the seed spread is used instead.
"""

from __future__ import annotations

import contextlib
import math
import tomllib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ganbench.errors import ConfigError, CorruptFileError, SampleSizeWarning, TooFewSamplesError

__all__ = [
    "CONFIDENCE",
    "MetricSpec",
    "MetricValue",
    "SeedResult",
    "Task",
    "bootstrap_interval",
    "t_interval",
    "summarize",
    "check_options",
    "check_auto_option",
    "disjoint_subsets",
    "add_distribution_metrics",
    "sample_size_notes",
    "PUBLISHED_FILE",
    "published_results",
]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_CHUNK = 100  # resamples drawn at once (memory: chunk * n indices)

PUBLISHED_FILE = Path(__file__).resolve().parents[1] / "published.toml"

PER_IMAGE = "per_image"
DISTRIBUTION = "distribution"
NON_NEGATIVE = (0.0, math.inf)
FRACTION = (0.0, 1.0)


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task reports: its column name, direction, kind and a one-line description."""

    name: str
    higher_is_better: bool
    kind: str  # PER_IMAGE or DISTRIBUTION
    description: str
    bounds: tuple[float, float] = (
        -math.inf,
        math.inf,
    )  # the metric's possible values; intervals are clipped to them

    def clip(self, low: float, high: float) -> tuple[float, float]:
        """An interval clipped to :attr:`bounds` (e.g. a FID interval never goes below 0)."""
        lo, hi = self.bounds
        return min(max(low, lo), hi), max(min(high, hi), lo)

    def to_dict(self) -> dict:
        return {"higher_is_better": self.higher_is_better, "kind": self.kind, "description": self.description}


@dataclass
class MetricValue:
    """A metric's value with its 95% interval, the sample size behind it and how the interval was made."""

    value: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "method": self.method}

    @classmethod
    def from_dict(cls, data: dict) -> MetricValue:
        return cls(
            float(data["value"]), float(data["low"]), float(data["high"]), int(data["n"]), str(data["method"])
        )


@dataclass
class SeedResult:
    """What one evaluation (one seed) of a task produced.

    Attributes:
        per_image: metric -> per-image values (pooled over seeds, bootstrapped).
        distribution: metric -> value on the whole sample of this seed.
        subsets: metric -> values on the ``K`` disjoint subset pairs (the one-seed spread).
        sample_sizes: metric -> the number of generated samples behind a distribution metric.
        counts: sample counts to report (``n_real``, ``n_fake``, images per data set, ...).
        extractors: role -> ``extractor_id`` of every feature network used.
        notes: remarks for the table's metadata (small-sample warnings, skipped metrics, ...).
    """

    per_image: dict[str, np.ndarray] = field(default_factory=dict)
    distribution: dict[str, float] = field(default_factory=dict)
    subsets: dict[str, list[float]] = field(default_factory=dict)
    sample_sizes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    extractors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form (resume files of ``ganbench run``)."""
        return {
            "per_image": {k: [float(x) for x in v] for k, v in self.per_image.items()},
            "distribution": {k: float(v) for k, v in self.distribution.items()},
            "subsets": {k: [float(x) for x in v] for k, v in self.subsets.items()},
            "sample_sizes": dict(self.sample_sizes),
            "counts": dict(self.counts),
            "extractors": dict(self.extractors),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> SeedResult:
        return cls(
            per_image={k: np.asarray(v, dtype=np.float64) for k, v in data["per_image"].items()},
            distribution={k: float(v) for k, v in data["distribution"].items()},
            subsets={k: [float(x) for x in v] for k, v in data["subsets"].items()},
            sample_sizes={k: int(v) for k, v in data["sample_sizes"].items()},
            counts={k: int(v) for k, v in data["counts"].items()},
            extractors=dict(data["extractors"]),
            notes=list(data["notes"]),
        )


# --------------------------------------------------------------------------------------------- intervals


def bootstrap_interval(
    values, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling with replacement, seeded)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    if x.size == 1 or np.all(x == x[0]):
        return float(x.mean()), float(x.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):
        stop = min(start + _BOOTSTRAP_CHUNK, resamples)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def t_interval(
    center: float, values, scale: float = 1.0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """``center ± t(confidence, k - 1) * sd(values) * scale / sqrt(k)`` (``(nan, nan)`` below 2 values)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) * scale / math.sqrt(x.size)
    return float(center - half), float(center + half)


def summarize(specs: list[MetricSpec], results: list[SeedResult]) -> dict[str, MetricValue]:
    """One :class:`MetricValue` per metric of ``specs`` found in ``results`` (see the module docstring)."""
    summary = {}
    for spec in specs:
        if spec.kind == PER_IMAGE:
            parts = [r.per_image[spec.name] for r in results if spec.name in r.per_image]
            if not parts:
                continue
            pooled = np.concatenate(parts)
            low, high = spec.clip(*bootstrap_interval(pooled))
            summary[spec.name] = MetricValue(float(pooled.mean()), low, high, pooled.size, "bootstrap")
            continue
        found = [r for r in results if spec.name in r.distribution]
        if not found:
            continue
        values = [r.distribution[spec.name] for r in found]
        n = found[0].sample_sizes.get(spec.name, 0)
        if len(found) >= 2:
            center = float(np.mean(values))
            low, high = spec.clip(*t_interval(center, values))
            summary[spec.name] = MetricValue(center, low, high, n, f"seeds({len(found)})")
        else:
            subsets = found[0].subsets.get(spec.name, [])
            low, high = spec.clip(*t_interval(values[0], subsets))
            method = f"subsets({len(subsets)})" if subsets else "none"
            summary[spec.name] = MetricValue(values[0], low, high, n, method)
    return summary


# --------------------------------------------------------------------------------------------- helpers


def disjoint_subsets(n: int, parts: int, seed: int) -> list[np.ndarray]:
    """``parts`` disjoint index sets covering a seeded permutation of ``range(n)`` (sizes differ by <= 1)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i * n // parts : (i + 1) * n // parts] for i in range(parts)]


def add_distribution_metrics(
    result: SeedResult, compute, n_real: int, n_fake: int, seed: int, parts: int
) -> None:
    """Record ``compute(real_index, fake_index) -> {metric: value}`` on all samples and its spread.

    The spread is ``compute`` on ``parts`` disjoint pairs of (real, fake) index subsets, drawn from
    ``seed``; small-sample warnings of the subsets are silenced (they are small on purpose), and a
    metric that cannot be computed on a subset (too few samples) gets no spread and a note.
    """
    full = compute(np.arange(n_real), np.arange(n_fake))
    spread: dict[str, list[float]] = {name: [] for name in full}
    if parts >= 2:
        pairs = zip(
            disjoint_subsets(n_real, parts, seed), disjoint_subsets(n_fake, parts, seed + 1), strict=True
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SampleSizeWarning)
                for real_index, fake_index in pairs:
                    for name, value in compute(real_index, fake_index).items():
                        spread[name].append(value)
        except TooFewSamplesError as exc:
            spread = {name: [] for name in full}
            result.notes.append(f"no subset spread for {', '.join(full)}: {exc}")
    for name, value in full.items():
        result.distribution[name] = float(value)
        result.subsets[name] = [float(v) for v in spread[name]]
        result.sample_sizes[name] = n_fake


@contextlib.contextmanager
def sample_size_notes(notes: list[str]):
    """Collect :class:`SampleSizeWarning` messages into ``notes`` (once each); other warnings pass on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SampleSizeWarning)
        yield
    for item in caught:
        if not issubclass(item.category, SampleSizeWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        elif str(item.message) not in notes:
            notes.append(str(item.message))


def check_options(defaults: dict[str, Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    """``defaults`` updated by ``options``; unknown keys and wrong types raise :class:`ConfigError`.

    A default of ``None`` accepts anything; ints are accepted where floats are expected.
    """
    result = dict(defaults)
    for key, value in options.items():
        if key not in defaults:
            raise ConfigError(f"{where}: unknown option {key!r} (options: {', '.join(sorted(defaults))})")
        default = defaults[key]
        if default is not None:
            expected = type(default)
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if expected is list and isinstance(value, tuple):
                value, ok = list(value), True
            if not ok:
                raise ConfigError(f"{where}: option {key} must be {expected.__name__}, got {value!r}")
        result[key] = value
    return result


def check_auto_option(options: dict[str, Any], key: str, where: str) -> None:
    """Normalise the ``"auto"``/true/false option ``key`` in place: ``None`` becomes ``"auto"``, and
    any other value raises :class:`ConfigError`."""
    if options[key] is None:
        options[key] = "auto"
    if options[key] not in ("auto", True, False):
        raise ConfigError(f"{where}: {key} must be 'auto', true or false, got {options[key]!r}")


@lru_cache(maxsize=1)
def published_results() -> tuple[dict[str, dict], list[dict]]:
    """The ``[sources]`` and ``[[results]]`` of :data:`PUBLISHED_FILE` (read once a process).

    Raises :class:`CorruptFileError` when the file cannot be read or an entry lacks a key or names an
    unknown source.
    """
    try:
        table = tomllib.loads(PUBLISHED_FILE.read_text(encoding="utf-8"))
        sources, results = table["sources"], table["results"]
        for entry in results:
            missing = {"task", "model", "source", "metrics"} - set(entry)
            if missing or entry["source"] not in sources:
                raise ValueError(f"entry {entry} lacks {sorted(missing)} or names an unknown source")
        for key, source in sources.items():
            if {"label", "convention"} - set(source):
                raise ValueError(f"source {key!r} needs a label and a convention")
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise CorruptFileError(f"cannot read the published results {str(PUBLISHED_FILE)!r}: {exc}") from None
    return sources, results


class Task:
    """Base class of the tasks: subclasses set the class attributes and implement :meth:`evaluate`.

    Class attributes:
        name: registry name (``mnist``, ``sr-x4``, ...).
        description: one line for listings.
        accepts: generator kinds it can call (:data:`ganbench.generators.GENERATOR_KINDS`).
        seeded: whether seeds change the evaluation (generation tasks draw new samples per seed;
            paired tasks are deterministic and run once).
        defaults: the options and their defaults (types are checked against them).
    """

    name: str = ""
    description: str = ""
    accepts: tuple[str, ...] = ()
    seeded: bool = True
    defaults: dict[str, Any] = {}

    def __init__(self, **options):
        self.options = check_options(self.defaults, options, f"task {self.name}")

    def metric_specs(self) -> list[MetricSpec]:
        """The metrics this task (with its options) reports, in table order."""
        raise NotImplementedError

    @property
    def primary_metric(self) -> str:
        """The metric the leaderboard chart plots (the first one)."""
        return self.metric_specs()[0].name

    def unavailable(self) -> str | None:
        """Why the task cannot run here (missing data or weights), or None when it can."""
        return None

    def evaluate(self, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
        """Score ``source`` (a :class:`~ganbench.generators.Generator` or
        :class:`~ganbench.generators.SampleSet`) with ``seed``."""
        raise NotImplementedError

    def holdout(self):
        """The "real data" baseline: a :class:`~ganbench.generators.SampleSet` of real images disjoint from
        the reference data, or None when the task has none."""
        return None

    def latency_inputs(self, generator, batch_size: int) -> tuple:
        """Representative inputs of ``batch_size`` for timing ``generator`` on this task."""
        return generator.example_inputs(batch_size)

    def published(self) -> list[dict]:
        """Published results to show next to the measured ones (:data:`PUBLISHED_FILE`), each cut to the
        metrics this task reports (rows left with none are dropped):
        ``[{"model", "source", "convention", "metrics"}]``."""
        reported = {spec.name for spec in self.metric_specs()}
        sources, results = published_results()
        rows = []
        for entry in results:
            metrics = {name: value for name, value in entry["metrics"].items() if name in reported}
            if entry["task"] == self.name and metrics:
                source = sources[entry["source"]]
                rows.append(
                    {
                        "model": entry["model"],
                        "source": source["label"],
                        "convention": source["convention"],
                        "metrics": metrics,
                    }
                )
        return rows

    def describe(self) -> dict:
        """Name and options, for metadata."""
        return {"name": self.name, "options": dict(self.options)}
