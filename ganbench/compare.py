"""The regression gate: compare a new leaderboard with a baseline, row by row, using the recorded intervals.

Rows are matched by ``(model, config, task)`` (published rows are ignored). For each quality metric of
a baseline row (its direction from the baseline's sidecar), the new value is a **regression** when its
95% interval lies entirely on the worse side of the baseline's interval by more than the metric's
tolerance::

    higher is better:  gap = baseline_low - new_high      lower is better:  gap = new_low - baseline_high
    regression when gap > tolerance (default 0)

so overlapping intervals never fail (no flaky gate), and a tolerance allows a known amount of slack in
the metric's units, or in percent of the baseline value (``fid=5%``). A value without an interval uses
the value itself. A baseline row or metric missing from the new leaderboard fails the gate too.
Latency columns (``*_ms``, ``*_img_s``) are compared only when a tolerance names them. Rows whose
feature extractors or task options differ between the two sidecars are not comparable: they fail with
status ``mismatch`` (a FID of other features, or of another sample count, says nothing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from ganbench.errors import ConfigError
from ganbench.leaderboard import ID_COLUMNS, PUBLISHED_PREFIX
from ganbench.scoring import format_value

__all__ = [
    "Finding",
    "Comparison",
    "parse_tolerances",
    "metric_directions",
    "comparability",
    "compare_rows",
    "compare_tables",
]

LATENCY_DIRECTIONS = {"_ms": False, "_img_s": True, "_peak_mb": False}
FAILING = ("regression", "missing", "mismatch")


@dataclass
class Finding:
    """The comparison of one metric of one row: ``status`` is ``regression``, ``missing``, ``mismatch``,
    ``better`` or ``ok`` (``detail`` explains a mismatch)."""

    model: str
    config: str
    task: str
    metric: str
    status: str
    new: float = math.nan
    new_low: float = math.nan
    new_high: float = math.nan
    baseline: float = math.nan
    baseline_low: float = math.nan
    baseline_high: float = math.nan
    gap: float = math.nan
    tolerance: float = 0.0
    detail: str = ""

    def describe(self) -> str:
        where = f"{self.model} ({self.config}) / {self.task} / {self.metric}"
        if self.status == "missing":
            return f"{where}: missing from the new leaderboard"
        if self.status == "mismatch":
            return f"{where}: not comparable: {self.detail}"
        new = f"{format_value(self.new)} [{format_value(self.new_low)}, {format_value(self.new_high)}]"
        old = (
            f"{format_value(self.baseline)} [{format_value(self.baseline_low)}, "
            f"{format_value(self.baseline_high)}]"
        )
        return (
            f"{where}: {new} vs baseline {old}; worse by {format_value(self.gap)} beyond the intervals "
            f"(tolerance {format_value(self.tolerance)})"
        )


@dataclass
class Comparison:
    """All findings; :attr:`failed` when any is a regression or missing."""

    findings: list[Finding]
    new_rows: list[tuple[str, str, str]]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status in FAILING]

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def to_dict(self) -> dict:
        return {
            "failed": self.failed,
            "failures": [asdict(f) for f in self.failures],
            "compared": len(self.findings),
            "new_rows": [list(r) for r in self.new_rows],
        }

    def format(self) -> str:
        """A plain-text report: the failures, then a one-line summary."""
        lines = [f"{f.status.upper():<11}" + f.describe() for f in self.failures]
        better = sum(f.status == "better" for f in self.findings)
        lines.append(
            f"{len(self.findings)} check(s): {len(self.failures)} failure(s), {better} better beyond the "
            f"intervals{f', {len(self.new_rows)} new row(s)' if self.new_rows else ''}"
        )
        return "\n".join(lines)


def parse_tolerances(items: list[str] | dict | None) -> dict[str, str]:
    """``["fid=0.5", "psnr=2%"]`` (or a dict) -> ``{"fid": "0.5", "psnr": "2%"}``, checked."""
    if items is None:
        return {}
    pairs = items.items() if isinstance(items, dict) else (item.partition("=")[::2] for item in items)
    tolerances = {}
    for metric, value in pairs:
        value = str(value).strip()
        try:
            number = float(value[:-1] if value.endswith("%") else value)
        except ValueError:
            number = math.nan
        if not metric or not math.isfinite(number) or number < 0:
            raise ConfigError(
                f"tolerance {metric}={value}: expected METRIC=VALUE or METRIC=VALUE% with VALUE >= 0"
            )
        tolerances[metric.strip()] = value
    return tolerances


def _tolerance(spec: str | None, baseline: float) -> float:
    if spec is None:
        return 0.0
    return abs(baseline) * float(spec[:-1]) / 100.0 if spec.endswith("%") else float(spec)


def metric_directions(metadata: dict, task: str, columns, tolerances: dict) -> dict[str, bool]:
    """``{metric: higher_is_better}`` of ``task``: its quality metrics, plus latency columns named in
    ``tolerances``."""
    directions = {
        m: bool(info["higher_is_better"])
        for m, info in metadata.get("tasks", {}).get(task, {}).get("metrics", {}).items()
    }
    for column in columns:
        if column in tolerances and column not in directions:
            suffix = next((s for s in LATENCY_DIRECTIONS if column.endswith(s)), None)
            if suffix is not None:
                directions[column] = LATENCY_DIRECTIONS[suffix]
    return directions


def _number(row: dict, key: str) -> float:
    value = row.get(key, math.nan)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def compare_rows(
    new: dict, baseline: dict, directions: dict[str, bool], tolerances: dict[str, str]
) -> list[Finding]:
    """Findings for every metric of ``directions`` that the baseline row has (see the module docstring)."""
    findings = []
    ident = {"model": baseline["model"], "config": baseline["config"], "task": baseline["task"]}
    for metric, higher in directions.items():
        base = _number(baseline, metric)
        if math.isnan(base):
            continue
        value = _number(new, metric)
        if math.isnan(value):
            findings.append(Finding(**ident, metric=metric, status="missing", baseline=base))
            continue

        def bound(row: dict, key: str, fallback: float) -> float:
            number = _number(row, key)
            return fallback if math.isnan(number) else number

        new_low, new_high = bound(new, f"{metric}_lo", value), bound(new, f"{metric}_hi", value)
        base_low, base_high = bound(baseline, f"{metric}_lo", base), bound(baseline, f"{metric}_hi", base)
        gap = base_low - new_high if higher else new_low - base_high
        improvement = new_low - base_high if higher else base_low - new_high
        tolerance = _tolerance(tolerances.get(metric), base)
        status = "regression" if gap > tolerance else ("better" if improvement > 0 else "ok")
        findings.append(
            Finding(
                **ident,
                metric=metric,
                status=status,
                new=value,
                new_low=new_low,
                new_high=new_high,
                baseline=base,
                baseline_low=base_low,
                baseline_high=base_high,
                gap=gap,
                tolerance=tolerance,
            )
        )
    return findings


def _rows_by_key(table: pd.DataFrame) -> dict[tuple[str, str, str], dict]:
    rows = {}
    for row in table.to_dict("records"):
        if str(row.get("config", "")).startswith(PUBLISHED_PREFIX):
            continue
        key = tuple(str(row[c]) for c in ID_COLUMNS)
        rows[key] = row
    return rows


def comparability(
    new_extractors: dict, new_options: dict | None, base_extractors: dict, base_options: dict | None
) -> str:
    """Why two rows cannot be compared (other feature extractors or task options), or ``""``."""
    reasons = []
    shared = set(new_extractors) & set(base_extractors)
    changed = {
        k: (base_extractors[k], new_extractors[k])
        for k in sorted(shared)
        if new_extractors[k] != base_extractors[k]
    }
    if changed:
        reasons.append(
            "feature extractors differ: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        )
    if new_options is not None and base_options is not None and new_options != base_options:
        keys = sorted(
            k for k in set(new_options) | set(base_options) if new_options.get(k) != base_options.get(k)
        )
        reasons.append(
            "task options differ: "
            + ", ".join(f"{k} {base_options.get(k)!r} -> {new_options.get(k)!r}" for k in keys)
        )
    return "; ".join(reasons)


def _row_extractors(metadata: dict) -> dict[tuple[str, str, str], dict]:
    return {(r["model"], r["config"], r["task"]): r.get("extractors", {}) for r in metadata.get("rows", [])}


def compare_tables(
    new: pd.DataFrame,
    baseline: pd.DataFrame,
    baseline_metadata: dict,
    tolerances: list[str] | dict | None = None,
    new_metadata: dict | None = None,
) -> Comparison:
    """Compare two leaderboards (the baseline's sidecar gives the metric directions; with the new one's
    sidecar, rows of other feature extractors or task options are reported as mismatches)."""
    tolerances = parse_tolerances(tolerances)
    unknown = sorted(set(tolerances) - set(baseline.columns))
    if unknown:
        raise ConfigError(f"tolerance for {unknown}: no such column in the baseline leaderboard")
    new_rows, base_rows = _rows_by_key(new), _rows_by_key(baseline)
    findings = []
    base_extractors, new_extractors = _row_extractors(baseline_metadata), _row_extractors(new_metadata or {})
    for key, base_row in base_rows.items():
        directions = metric_directions(baseline_metadata, key[2], baseline.columns, tolerances)
        if key not in new_rows:
            findings.append(Finding(*key, metric="(row)", status="missing"))
            continue
        if new_metadata is not None:
            reason = comparability(
                new_extractors.get(key, {}),
                new_metadata.get("tasks", {}).get(key[2], {}).get("options"),
                base_extractors.get(key, {}),
                baseline_metadata.get("tasks", {}).get(key[2], {}).get("options"),
            )
            if reason:
                findings.append(Finding(*key, metric="(row)", status="mismatch", detail=reason))
                continue
        findings += compare_rows(new_rows[key], base_row, directions, tolerances)
    return Comparison(findings, sorted(set(new_rows) - set(base_rows)))
