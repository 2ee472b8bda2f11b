"""Score one generator (or ready samples) on one task: the engine of ``ganbench score``.

::

    from ganbench.generators import load_source
    from ganbench.scoring import score
    from ganbench.tasks import get_task

    task = get_task("mnist")
    result = score(load_source("runs/dcgan-cpu"), task, seeds=[0, 1, 2])
    print(result.format_table())

Seeds: a generator on a seeded task is evaluated once per seed (new samples each time); a
deterministic task, or ready samples that every seed would select alike (no more than the task's ``n``
images), is evaluated once. Intervals: :mod:`ganbench.tasks.base`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ganbench.errors import CheckpointError
from ganbench.generators import Generator, SampleSet
from ganbench.latency import profile_generator
from ganbench.progress import quiet
from ganbench.tasks.base import MetricSpec, MetricValue, SeedResult, Task, summarize

__all__ = ["ScoreResult", "check_source", "seeds_for", "evaluate_seed", "combine", "score", "format_value"]


@dataclass
class ScoreResult:
    """A task's metrics for one source, with intervals, counts, feature networks, notes and latency."""

    task: str
    task_options: dict
    source: dict
    seeds: list[int]
    metrics: dict[str, MetricValue]
    specs: dict[str, MetricSpec]
    counts: dict[str, int] = field(default_factory=dict)
    extractors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    latency: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (``ganbench score --json``)."""
        return {
            "task": self.task,
            "task_options": self.task_options,
            "source": self.source,
            "seeds": self.seeds,
            "metrics": {
                name: {**value.to_dict(), **self.specs[name].to_dict()}
                for name, value in self.metrics.items()
            },
            "counts": self.counts,
            "extractors": self.extractors,
            "notes": self.notes,
            "latency": self.latency,
        }

    def format_table(self) -> str:
        """The result as a plain-text table for the terminal."""
        name = self.source.get("path") or self.source.get("name") or "source"
        lines = [f"{self.task}: {name} (seeds {', '.join(map(str, self.seeds))})"]
        width = max([len("metric")] + [len(m) for m in self.metrics])
        lines.append(
            f"{'metric':<{width}}  {'value':>10}  {'95% interval':<23}  {'n':>6}  {'better':<6}  "
            "interval from"
        )
        for metric, value in self.metrics.items():
            interval = f"[{format_value(value.low)}, {format_value(value.high)}]"
            better = "higher" if self.specs[metric].higher_is_better else "lower"
            lines.append(
                f"{metric:<{width}}  {format_value(value.value):>10}  {interval:<23}  {value.n:>6}  "
                f"{better:<6}  {value.method}"
            )
        if self.counts:
            lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        if self.extractors:
            lines.append("features: " + ", ".join(f"{k}={v}" for k, v in self.extractors.items()))
        lines += [f"note: {note}" for note in self.notes]
        if self.latency:
            lines += format_latency(self.latency)
        return "\n".join(lines)


def format_value(value: float) -> str:
    """A metric value for tables: 4 significant digits below 1, two decimals above, ``-`` for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"


def format_latency(latency: dict) -> list[str]:
    """Lines describing a :func:`~ganbench.latency.profile_generator` result."""
    lines = [f"latency: {latency['parameters']:,} parameters, output shape {latency['output_shape']}"]
    for device, env in latency["environments"].items():
        lines.append(f"  {device}: {env['device_name']}, torch {env['torch']}, {env['threads']} threads")
    for run in latency["runs"]:
        memory = "-" if run["peak_memory_mb"] is None else f"{run['peak_memory_mb']:.1f} MiB"
        lines.append(
            f"  {run['device']} batch {run['batch_size']}: median {run['median_ms']:.3f} ms, "
            f"p90 {run['p90_ms']:.3f} ms, "
            f"{run['images_per_s']:.1f} images/s, peak memory +{memory} ({run['repeats']} repeats)"
        )
    return lines


def check_source(task: Task, source) -> None:
    """Raise :class:`CheckpointError` unless ``task`` can call ``source``."""
    if isinstance(source, Generator) and source.kind not in task.accepts:
        raise CheckpointError(
            f"task {task.name} needs a {' or '.join(task.accepts)} generator; "
            f"{source.name} is a {source.kind} generator"
        )
    if not isinstance(source, (Generator, SampleSet)):
        raise TypeError(f"expected a Generator or SampleSet, got {type(source).__name__}")


def seeds_for(task: Task, source, seeds) -> list[int]:
    """The seeds worth evaluating (see the module docstring)."""
    seeds = list(dict.fromkeys(int(s) for s in seeds)) or [0]
    if not task.seeded:
        return seeds[:1]
    if isinstance(source, SampleSet) and len(source) <= task.options.get("n", 0):
        return seeds[:1]
    return seeds


def evaluate_seed(task: Task, source, seed: int, device: str = "cpu", progress: bool = True) -> SeedResult:
    """One evaluation of ``source`` on ``task`` with ``seed`` (checked first)."""
    check_source(task, source)
    with quiet(not progress):
        return task.evaluate(source, seed, device=device, progress=progress)


def combine(
    task: Task, source_info: dict, seeds: list[int], results: list[SeedResult], latency: dict | None = None
) -> ScoreResult:
    """Summarise per-seed results into a :class:`ScoreResult` (counts from the first seed)."""
    specs = task.metric_specs()
    notes = list(dict.fromkeys(note for r in results for note in r.notes))
    extractors = {k: v for r in results for k, v in r.extractors.items()}
    return ScoreResult(
        task=task.name,
        task_options=dict(task.options),
        source=source_info,
        seeds=seeds,
        metrics=summarize(specs, results),
        specs={s.name: s for s in specs},
        counts=dict(results[0].counts) if results else {},
        extractors=extractors,
        notes=notes,
        latency=latency,
    )


def score(
    source,
    task: Task,
    seeds=(0,),
    device: str = "cpu",
    latency: bool = False,
    progress: bool = True,
    batch_sizes: tuple[int, ...] = (1, 64),
    **timing,
) -> ScoreResult:
    """Evaluate ``source`` on ``task`` for each useful seed and summarise; with ``latency``, also profile
    the generator (:func:`ganbench.latency.profile_generator`) at ``batch_sizes``."""
    check_source(task, source)
    chosen = seeds_for(task, source, seeds)
    results = [evaluate_seed(task, source, seed, device, progress) for seed in chosen]
    profile = None
    if latency and isinstance(source, Generator):
        profile = profile_generator(source, task.latency_inputs, batch_sizes, **timing)
    return combine(task, source.source, chosen, results, profile)
