"""Leaderboards: a table of models x tasks with intervals and latency, written as CSV, Markdown, HTML,
a JSON sidecar and a PNG chart (quality vs latency).

Columns (CSV): ``model``, ``config``, ``task``, ``seeds``; per metric ``<m>``, ``<m>_lo``, ``<m>_hi``
(the 95% interval, :mod:`ganbench.tasks.base`); sample counts (``n_real``, ``n_fake``, ``n_set5``...);
latency ``params``, ``output_shape`` and, per device and batch size, ``<device>_b<batch>_ms`` (median),
``_p90_ms``, ``_img_s`` and ``_peak_mb``. Published results (``ganbench/published.toml``: SRGAN's
Table 2, Lucic et al. 2018) are rows whose ``config`` starts with ``published:``, without intervals
or latency; the sidecar's ``published`` maps each source to the convention its numbers follow.

The sidecar ``NAME.json`` holds what the numbers depend on: ganbench version and git commit, torch,
devices, date, the command that regenerates the table, task options, metric directions, feature
extractor ids, sample counts and notes per row, skipped (model, task) pairs and why. Every file is
written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import html
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from ganbench.errors import CorruptFileError, DataNotFoundError
from ganbench.files import atomic_write_bytes, atomic_write_text
from ganbench.scoring import ScoreResult, format_value

__all__ = [
    "ID_COLUMNS",
    "PUBLISHED_PREFIX",
    "result_row",
    "published_row",
    "latency_columns",
    "make_table",
    "write_leaderboard",
    "read_leaderboard",
    "render_markdown",
    "render_html",
    "render_chart",
    "metric_columns",
]

ID_COLUMNS = ("model", "config", "task")
PUBLISHED_PREFIX = "published:"
LATENCY_X = "cpu_b1_ms"  # the chart's x axis: CPU latency at batch 1
FILE_SUFFIXES = (".csv", ".md", ".html", ".json", ".png")


# --------------------------------------------------------------------------------------------- rows


def latency_columns(latency: dict | None) -> dict:
    """Flat latency columns of a :func:`~ganbench.latency.profile_generator` result (empty without one)."""
    if not latency:
        return {}
    columns = {
        "params": latency["parameters"],
        "output_shape": "x".join(map(str, latency["output_shape"] or [])),
    }
    for run in latency["runs"]:
        prefix = f"{run['device']}_b{run['batch_size']}"
        columns.update(
            {
                f"{prefix}_ms": run["median_ms"],
                f"{prefix}_p90_ms": run["p90_ms"],
                f"{prefix}_img_s": run["images_per_s"],
                f"{prefix}_peak_mb": run["peak_memory_mb"],
            }
        )
    return columns


def result_row(model: str, config: str, result: ScoreResult, task: str | None = None) -> dict:
    """One table row: identity, metrics with intervals, counts and latency of a :class:`ScoreResult`
    (``task``: the label of the task in the table, default its name)."""
    row = {
        "model": model,
        "config": config,
        "task": task or result.task,
        "seeds": ",".join(map(str, result.seeds)),
    }
    for name, value in result.metrics.items():
        row.update({name: value.value, f"{name}_lo": value.low, f"{name}_hi": value.high})
    row.update(result.counts)
    row.update(latency_columns(result.latency))
    return row


def published_row(task: str, entry: dict) -> dict:
    """A row of published numbers (``{"model", "source", "metrics"}``, as
    :meth:`ganbench.tasks.base.Task.published` gives them), without intervals."""
    row = {
        "model": entry["model"],
        "config": f"{PUBLISHED_PREFIX} {entry['source']}",
        "task": task,
        "seeds": "",
    }
    for name, value in entry["metrics"].items():
        row.update({name: value, f"{name}_lo": math.nan, f"{name}_hi": math.nan})
    return row


def make_table(rows: list[dict]) -> pd.DataFrame:
    """A DataFrame of ``rows`` with the identity columns first."""
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[*ID_COLUMNS, "seeds"])
    first = [c for c in (*ID_COLUMNS, "seeds") if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def metric_columns(metadata: dict, task: str) -> list[str]:
    """The metric names of ``task`` in table order, from the sidecar."""
    return list(metadata.get("tasks", {}).get(task, {}).get("metrics", {}))


# ---------------------------------------------------------------------------------------- rendering


def _cell(table: pd.DataFrame, index, name: str) -> str:
    value = table.at[index, name] if name in table.columns else math.nan
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    low, high = table.at[index, f"{name}_lo"], table.at[index, f"{name}_hi"]
    if isinstance(low, float) and (math.isnan(low) or math.isnan(high)):
        return format_value(float(value))
    return f"{format_value(float(value))} [{format_value(float(low))}, {format_value(float(high))}]"


def _display_frames(table: pd.DataFrame, metadata: dict) -> list[tuple[str, pd.DataFrame]]:
    """Per task: a display frame with 'value [low, high]' cells, counts and the main latency columns."""
    frames = []
    for task in dict.fromkeys(table["task"]):
        rows = table[table["task"] == task]
        metrics = [m for m in metric_columns(metadata, task) if m in rows.columns and rows[m].notna().any()]
        counts = [c for c in rows.columns if c.startswith("n_") and rows[c].notna().any()]
        latency = [
            c for c in rows.columns if c == "params" or (c.endswith(("_ms", "_img_s")) and "_p90" not in c)
        ]
        latency = [c for c in latency if rows[c].notna().any()]
        display = pd.DataFrame(
            {
                "model": rows["model"],
                "config": rows["config"],
                **{m: [_cell(rows, i, m) for i in rows.index] for m in metrics},
                **{
                    c: [_plain(rows.at[i, c], c in counts or c == "params") for i in rows.index]
                    for c in counts + latency
                },
            }
        )
        frames.append((task, display))
    return frames


def _plain(value, whole: bool = False) -> str:
    """A count or latency cell; ``whole`` numbers (counts, parameters) print as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if whole or isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return format_value(float(value))


def _header_lines(metadata: dict) -> list[str]:
    env = metadata.get("environment", {})
    devices = ", ".join(
        f"{device}: {info.get('device_name')}" for device, info in env.get("devices", {}).items()
    )
    lines = [
        f"Generated {metadata.get('date', '?')} by ganbench {metadata.get('ganbench', '?')} "
        f"(commit {metadata.get('commit') or 'unknown'}), torch {env.get('torch', '?')}, {devices}.",
        f"Regenerate with: `{metadata.get('command', '?')}`",
        "Cells are value [95% interval]: bootstrap over images for per-image metrics; spread over seeds, "
        "or over "
        "disjoint sample subsets with one seed, for distribution metrics. Latency: median ms per call.",
    ]
    return lines


def render_markdown(table: pd.DataFrame, metadata: dict) -> str:
    """The leaderboard as Markdown: a header, one table per task, notes and skipped pairs."""
    out = [f"# Leaderboard: {metadata.get('name', '')}", "", *_header_lines(metadata), ""]
    for task, frame in _display_frames(table, metadata):
        out += [f"## {task}", "", "| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
        out += [
            "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)
        ]
        out.append("")
    out += _notes_lines(metadata)
    return "\n".join(out).rstrip() + "\n"


def _notes_lines(metadata: dict) -> list[str]:
    lines = []
    notes = [(r, n) for r in metadata.get("rows", []) for n in r.get("notes", [])]
    if notes:
        lines += ["## Notes", ""] + [f"- {r['model']} / {r['task']}: {n}" for r, n in notes] + [""]
    if metadata.get("skipped"):
        lines += (
            ["## Skipped", ""]
            + [f"- {s['model']} / {s['task']}: {s['reason']}" for s in metadata["skipped"]]
            + [""]
        )
    if metadata.get("published"):
        lines += (
            ["## Published results", ""]
            + [f"- {source}: {convention}" for source, convention in metadata["published"].items()]
            + [""]
        )
    return lines


def render_html(table: pd.DataFrame, metadata: dict) -> str:
    """The leaderboard as a standalone HTML page (pandas ``to_html`` per task)."""
    parts = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>ganbench: {html.escape(metadata.get('name', ''))}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}</style></head><body>",
        f"<h1>Leaderboard: {html.escape(metadata.get('name', ''))}</h1>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in _header_lines(metadata)]
    for task, frame in _display_frames(table, metadata):
        parts += [f"<h2>{html.escape(task)}</h2>", frame.to_html(index=False, escape=True, na_rep="")]
    notes = _notes_lines(metadata)
    if notes:
        parts.append(
            "<ul>"
            + "".join(f"<li>{html.escape(line[2:])}</li>" for line in notes if line.startswith("- "))
            + "</ul>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -------------------------------------------------------------------------------------------- chart


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering ``[low, high]``."""
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 values covering ``[low, high]`` (both > 0) for a log axis."""
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for m in (1, 2, 5)
    ]
    ticks = [t for t in ticks if low <= t <= high]
    return ticks if len(ticks) >= 3 else [float(f"{t:.2g}") for t in _ticks(low, high)]


COLORS = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (23, 190, 207),
    (140, 86, 75),
)


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    task: str,
    metric: str,
    higher: bool,
    points: list[tuple[str, float, float]],
    levels: list[tuple[str, float]],
    font,
) -> None:
    """One scatter panel: ``points`` (label, latency ms, value) and horizontal ``levels`` (label, value)."""
    left, top, right, bottom = box
    draw.text(
        ((left + right) / 2, top - 22),
        f"{task}: {metric} ({'higher' if higher else 'lower'} is better) vs CPU latency at batch 1",
        fill="black",
        font=font,
        anchor="mb",
    )
    draw.rectangle(box, outline="black")
    values = [v for _, _, v in points] + [v for _, v in levels]
    if not values:
        draw.text((left + 10, top + 10), "no rows with this metric", fill="black", font=font)
        return
    y_low, y_high = min(values), max(values)
    pad = (y_high - y_low) * 0.08 or abs(y_high) * 0.1 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    xs = [x for _, x, _ in points]
    x_low, x_high = (min(xs) / 1.5, max(xs) * 1.5) if xs else (0.1, 10.0)
    log_x = x_low > 0

    def x_pos(x: float) -> float:
        if log_x:
            return left + (math.log(x) - math.log(x_low)) / (math.log(x_high) - math.log(x_low)) * (
                right - left
            )
        return left + (x - x_low) / (x_high - x_low) * (right - left)

    def y_pos(y: float) -> float:
        return bottom - (y - y_low) / (y_high - y_low) * (bottom - top)

    for tick in _ticks(y_low, y_high):
        y = y_pos(tick)
        draw.line((left + 1, y, right - 1, y), fill=(232, 232, 232))
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 6, y), format_value(tick), fill="black", font=font, anchor="rm")
    for tick in _log_ticks(x_low, x_high) if log_x else _ticks(x_low, x_high):
        x = x_pos(tick)
        draw.line((x, bottom, x, bottom + 4), fill="black")
        draw.text((x, bottom + 6), f"{tick:g}", fill="black", font=font, anchor="ma")
    draw.text(
        ((left + right) / 2, bottom + 22),
        "CPU latency, batch 1 (ms, log scale)",
        fill="black",
        font=font,
        anchor="ma",
    )
    for label, value in levels:
        y = y_pos(value)
        for x in range(left + 2, right - 2, 12):
            draw.line((x, y, min(x + 6, right - 2), y), fill=(120, 120, 120))
        draw.text((right - 4, y - 2), label, fill=(90, 90, 90), font=font, anchor="rb")
    for i, (label, x_value, value) in enumerate(points):
        color = COLORS[i % len(COLORS)]
        x, y = x_pos(x_value), y_pos(value)
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=color, outline="black")
        right_half = x > (left + right) / 2  # label on the side with room
        draw.text(
            (x - 8, y) if right_half else (x + 8, y),
            label,
            fill=color,
            font=font,
            anchor="rm" if right_half else "lm",
        )


def render_chart(
    table: pd.DataFrame, metadata: dict, panel_size: tuple[int, int] = (760, 380)
) -> Image.Image:
    """Quality vs latency, one panel per task: rows with a CPU batch-1 latency are points; rows without
    (real data, published numbers) are dashed horizontal reference lines."""
    tasks = list(dict.fromkeys(table["task"])) if not table.empty else []
    width, height = panel_size
    margin_left, margin_top, margin_bottom = 80, 40, 50
    image = Image.new("RGB", (width, max(1, len(tasks)) * height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    if not tasks:
        draw.text((20, 20), "empty leaderboard", fill="black", font=font)
    for i, task in enumerate(tasks):
        info = metadata.get("tasks", {}).get(task, {})
        metric = info.get("primary_metric") or (metric_columns(metadata, task) or [""])[0]
        higher = info.get("metrics", {}).get(metric, {}).get("higher_is_better", True)
        rows = table[table["task"] == task]
        points, levels = [], []
        for _, row in rows.iterrows():
            value = row.get(metric, math.nan)
            if value is None or pd.isna(value):
                continue
            label = (
                row["model"]
                if str(row["config"]).startswith(PUBLISHED_PREFIX)
                else f"{row['model']} ({row['config']})"
            )
            latency = row.get(LATENCY_X, math.nan)
            if latency is not None and not pd.isna(latency) and latency > 0:
                points.append((label, float(latency), float(value)))
            else:
                levels.append((label, float(value)))
        box = (margin_left, i * height + margin_top, width - 20, (i + 1) * height - margin_bottom)
        _panel(draw, box, task, metric, higher, points, levels, font)
    return image


# ---------------------------------------------------------------------------------------- read/write


def write_leaderboard(
    table: pd.DataFrame, metadata: dict, out_dir: str | os.PathLike, name: str
) -> dict[str, Path]:
    """Write ``NAME.csv``, ``.md``, ``.html``, ``.png`` and the ``.json`` sidecar (last) into ``out_dir``."""
    out_dir = Path(out_dir)
    metadata = {**metadata, "name": name}
    png = io.BytesIO()
    render_chart(table, metadata).save(png, format="PNG")
    paths = {
        "csv": atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False)),
        "md": atomic_write_text(out_dir / f"{name}.md", render_markdown(table, metadata)),
        "html": atomic_write_text(out_dir / f"{name}.html", render_html(table, metadata)),
        "png": atomic_write_bytes(out_dir / f"{name}.png", png.getvalue()),
    }
    paths["json"] = atomic_write_text(
        out_dir / f"{name}.json", json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n"
    )
    return paths


def read_leaderboard(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Read a leaderboard: ``NAME.csv``, ``NAME.json`` or ``NAME`` (any of its files) -> (table, sidecar).

    Raises :class:`DataNotFoundError` when the CSV or its sidecar is missing and :class:`CorruptFileError`
    when either cannot be read.
    """
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in FILE_SUFFIXES else path
    csv_path, json_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".json")
    for needed in (csv_path, json_path):
        if not needed.is_file():
            raise DataNotFoundError(
                f"leaderboard file {str(needed)!r} does not exist (need NAME.csv and its NAME.json sidecar)"
            )
    try:
        table = pd.read_csv(
            csv_path,
            dtype={"model": str, "config": str, "task": str, "seeds": str},
            keep_default_na=False,
            na_values=[""],
        )
        metadata = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read leaderboard {stem}: {exc}") from None
    missing = [c for c in ID_COLUMNS if c not in table.columns]
    if missing or not isinstance(metadata, dict):
        raise CorruptFileError(f"{csv_path}: not a ganbench leaderboard (missing columns {missing})")
    for column in ("config", "seeds"):
        if column in table.columns:
            table[column] = table[column].fillna("")
    return table, metadata
