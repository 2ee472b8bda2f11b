"""The loss study of issue 3: the six adversarial losses on the dcgan MNIST at the same budget.

::

    python -m reference_models.loss_study                            # 6 losses x seeds 0 1 2, 1,800 updates
    python -m reference_models.loss_study --losses nonsaturating hinge --seeds 0 --updates 900
    python -m reference_models.loss_study --config tiny --reference embedded --samples 200 --updates 12

**Recipes.** Each loss trains with its own recipe on top of the base config (``--config``, default
``cpu``): ``minimax``, ``nonsaturating``, ``lsgan`` and ``hinge`` use the base config as it is, with
only ``loss.name`` changed; ``wgan`` and ``wgan-gp`` apply the settings of their recipe files
``configs/dcgan/cpu-wgan.toml`` and ``cpu-wgan-gp.toml`` (the file's own keys, without its
``inherit``; with the ``cpu`` base this is exactly the file's config) over the base config, so they
keep its width, batch size and tricks (EMA...). What each recipe changes is listed in the table's
notes.

**Budget.** Every run gets the same number of network updates (``--updates``; a D update and a G
update count one each): ``steps = updates // (train.n_critic + train.n_gen)``. With the cpu recipe
(1 D + 2 G a step) 1,800 updates are 600 steps; with the WGAN recipes (5 D + 1 G) 300 steps.

**Scores.** Each trained generator is scored by the ``mnist`` task (:mod:`ganbench.tasks.generation`):
``--samples`` images (default 10,000, latents of seed 0) against the MNIST test set (``--reference
test``; ``embedded``: the package's 1,000-digit sample, for smoke runs), FID of the MNIST classifier's
128-d features and the Inception Score of its logits (also KID and precision/recall, in the per-run
CSV). The held-out real digits (the training split) are scored the same way, as the table's
``real-data`` row. Per loss: the mean and the sample standard deviation (ddof = 1) over the seeds
that finished; a run whose loss diverges (:class:`~ganbench.errors.TrainingDivergedError`) is
counted, not scored.

**Resume.** Runs live in ``--runs-dir``/``<config>-u<updates>``/``<loss>``/``seed<seed>``. A run whose
final checkpoint exists is not trained again, a run with an earlier checkpoint continues from it, and
each run's training time and scores are kept in its ``loss-study.json``, so a study that was stopped
goes on where it stopped. A run folder made with another config is refused (:class:`CheckpointError`).

**Outputs** (``--out``, default ``leaderboards/dcgan-losses``): ``.md`` (the command, machine and
threads at the top, the summary, the runs, the recipes and notes), ``.csv`` (the summary per loss),
``-runs.csv`` (one row per run) and ``.png`` (FID and IS bars, error bars ± std, seeds as dots),
each written atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ganbench.errors import (
    CheckpointError,
    ConfigError,
    DataNotFoundError,
    GanbenchError,
    TrainingDivergedError,
)
from ganbench.files import atomic_write_bytes, atomic_write_text
from ganbench.generators import load_source
from ganbench.latency import environment
from ganbench.leaderboard import COLORS, _ticks
from ganbench.scoring import format_value
from ganbench.tasks import get_task
from reference_models.checkpoint import code_version, list_checkpoints
from reference_models.config import config_dir, load_config, merge, resolve
from reference_models.engine import Trainer, _flatten
from reference_models.losses import LOSSES

__all__ = [
    "MODEL",
    "LOSS_NAMES",
    "RECIPE_CONFIGS",
    "Run",
    "updates_per_step",
    "study_config",
    "recipe_changes",
    "plan_runs",
    "train_run",
    "score_run",
    "score_real_data",
    "run_row",
    "summarize",
    "render_markdown",
    "render_chart",
    "run_study",
    "main",
]

MODEL = "dcgan"
LOSS_NAMES = tuple(LOSSES)  # minimax, nonsaturating, lsgan, wgan, wgan-gp, hinge
RECIPE_CONFIGS = {"wgan": "cpu-wgan", "wgan-gp": "cpu-wgan-gp"}  # the other losses: the base config as is
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_UPDATES = 1800  # 600 steps of the cpu recipe, 300 of the WGAN recipes
DEFAULT_SAMPLES = 10000
EVAL_SEED = 0  # latents of the scored samples (the same for every run)
RECORD_FILE = "loss-study.json"
REAL_DATA = "real-data"
SUMMARY_METRICS = ("fid", "is")
RUN_METRICS = ("fid", "is", "kid", "precision", "recall")
REFERENCE_TITLES = {"test": "MNIST test set (10,000)", "embedded": "embedded MNIST sample (1,000)"}
METRIC_TITLES = {"fid": "FID", "is": "IS"}
LOWER_IS_BETTER = {"fid": True, "is": False}


# ----------------------------------------------------------------------------------------- configs


def _recipe_table(loss: str) -> dict:
    """The settings ``loss``'s recipe puts over the base config (``train.steps`` is the budget's)."""
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r} (the study's losses: {', '.join(LOSS_NAMES)})")
    if loss not in RECIPE_CONFIGS:
        return {"loss": {"name": loss}}
    path = config_dir(MODEL) / f"{RECIPE_CONFIGS[loss]}.toml"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the {loss} recipe {str(path)!r}: {exc}") from None
    table.pop("inherit", None)
    table.get("train", {}).pop("steps", None)
    if table.get("loss", {}).get("name") != loss:
        raise ConfigError(f"the {loss} recipe {str(path)!r} trains loss {table.get('loss')}, not {loss!r}")
    return table


def updates_per_step(config: dict) -> int:
    """Network updates in one training step: ``train.n_critic`` D updates plus ``train.n_gen`` G updates."""
    return config["train"]["n_critic"] + config["train"]["n_gen"]


def study_config(loss: str, base: str = "cpu", updates: int = DEFAULT_UPDATES, seed: int = 0) -> dict:
    """The full training config of one run: ``loss``'s recipe over the ``base`` dcgan config, trained for
    ``updates // updates_per_step`` steps from ``seed``. Raises :class:`ConfigError` when the budget is
    less than one step."""
    config = resolve(merge(load_config(MODEL, base), _recipe_table(loss)), MODEL)
    steps = updates // updates_per_step(config)
    if steps < 1:
        raise ConfigError(
            f"a budget of {updates} updates is less than one {loss} step "
            f"({updates_per_step(config)} updates)"
        )
    return resolve(merge(config, {"train": {"steps": steps, "seed": seed}}), MODEL)


def recipe_changes(loss: str, base: str = "cpu") -> list[str]:
    """``"key: base value -> recipe value"`` for each setting ``loss``'s recipe changes in ``base``."""
    before = _flatten(load_config(MODEL, base))
    after = _flatten(resolve(merge(load_config(MODEL, base), _recipe_table(loss)), MODEL))
    return [
        f"{key}: {before.get(key, '-')} -> {after.get(key, '-')}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


# --------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One (loss, seed) run of the study: its config and folder."""

    loss: str
    seed: int
    config: dict
    folder: Path

    @property
    def steps(self) -> int:
        return self.config["train"]["steps"]

    @property
    def updates(self) -> int:
        return self.steps * updates_per_step(self.config)

    @property
    def final_checkpoint(self) -> Path:
        return self.folder / "checkpoints" / f"step_{self.steps:08d}.json"

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD_FILE

    def read_record(self) -> dict:
        """The run's ``loss-study.json`` (a fresh one when there is none); another config is refused."""
        if not self.record_path.is_file():
            return {"loss": self.loss, "seed": self.seed, "config": self.config, "train": None, "score": None}
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {str(self.record_path)!r}: {exc}") from None
        self._check_same_config(record.get("config", {}), self.record_path)
        return record

    def write_record(self, record: dict) -> None:
        atomic_write_text(self.record_path, json.dumps(record, indent=2) + "\n")

    def _check_same_config(self, other: dict, where: Path) -> None:
        mine, theirs = _flatten(self.config), _flatten(other)
        differ = sorted(
            k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k) and not k.startswith("log.")
        )
        if differ:
            raise CheckpointError(
                f"{str(where)!r} was made with another config (differs in {differ[:6]}); "
                "remove that run folder or choose another --runs-dir"
            )

    def check_final_checkpoint(self) -> None:
        """Refuse a final checkpoint trained with another config than this run's."""
        try:
            record = json.loads(self.final_checkpoint.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {str(self.final_checkpoint)!r}: {exc}") from None
        self._check_same_config(record.get("config", {}), self.final_checkpoint)


def plan_runs(losses, seeds, base: str, updates: int, runs_dir: Path) -> list[Run]:
    """The study's runs, loss by loss, seed by seed."""
    group = Path(runs_dir) / f"{Path(base).stem}-u{updates}"  # base: a config name or a .toml path
    return [
        Run(loss, seed, study_config(loss, base, updates, seed), group / loss / f"seed{seed}")
        for loss in losses
        for seed in seeds
    ]


def train_run(run: Run, device: str = "cpu", progress: bool = True) -> dict:
    """Train ``run`` unless it finished (or diverged) before; returns its record's ``train`` entry.

    ``train_s`` is the measured wall time of the training done here (``from_step`` on); a run found
    finished without a record has ``train_s = None``.
    """
    record = run.read_record()
    if record["train"] is not None and (record["train"]["diverged"] or run.final_checkpoint.is_file()):
        return record["train"]
    if run.final_checkpoint.is_file():
        run.check_final_checkpoint()
        record["train"] = {"from_step": None, "train_s": None, "diverged": None}
        run.write_record(record)
        return record["train"]
    resume = bool(list_checkpoints(run.folder / "checkpoints"))
    trainer = Trainer(run.config, run.folder, device=device, resume=resume, progress=progress)
    from_step, diverged = trainer.step, None
    start = time.perf_counter()
    try:
        trainer.train()
    except TrainingDivergedError as exc:
        diverged = str(exc)
    record["train"] = {"from_step": from_step, "train_s": time.perf_counter() - start, "diverged": diverged}
    run.write_record(record)
    return record["train"]


def _scored_with(task) -> dict:
    return {key: task.options[key] for key in ("n", "reference")} | {"eval_seed": EVAL_SEED}


def _score_entry(task, source, device: str, progress: bool) -> dict:
    start = time.perf_counter()
    result = task.evaluate(source, EVAL_SEED, device=device, progress=progress)
    return {
        "scored_with": _scored_with(task),
        "score_s": time.perf_counter() - start,
        "metrics": dict(result.distribution),
        "counts": dict(result.counts),
        "notes": list(result.notes),
    }


def score_run(run: Run, task, device: str = "cpu", progress: bool = True) -> dict | None:
    """Score ``run``'s final generator with ``task`` unless its record holds such a score; returns the
    record's ``score`` entry (``None`` for a diverged run)."""
    record = run.read_record()
    if record["train"] is None or record["train"]["diverged"]:
        return None
    score = record["score"]
    if score is None or score["scored_with"] != _scored_with(task):
        generator = load_source(run.final_checkpoint, device=device)
        record["score"] = score = _score_entry(task, generator, device, progress)
        run.write_record(record)
    return score


def score_real_data(task, runs_dir: Path, device: str = "cpu", progress: bool = True) -> dict:
    """The task's held-out real digits scored like a generator (kept in ``runs_dir/real-data.json``)."""
    path = Path(runs_dir) / f"{REAL_DATA}.json"
    if path.is_file():
        try:
            score = json.loads(path.read_text(encoding="utf-8"))
            if score.get("scored_with") == _scored_with(task):
                return score
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass  # recomputed below
    holdout = task.holdout()
    score = _score_entry(task, holdout, device, progress)
    score["source"] = holdout.source.get("data", REAL_DATA)
    atomic_write_text(path, json.dumps(score, indent=2) + "\n")
    return score


def run_row(run: Run, trained: dict, score: dict | None) -> dict:
    """One row of the per-run table (a diverged run has no training time: it did not train to the end)."""
    from_step, train_s = trained["from_step"], trained["train_s"]
    if trained["diverged"]:
        train_s = None
    elif train_s is not None and from_step:  # resumed: the time of the whole run, extrapolated
        train_s *= run.steps / (run.steps - from_step)
    metrics = (score or {}).get("metrics", {})
    return {
        "loss": run.loss,
        "seed": run.seed,
        "steps": run.steps,
        "updates": run.updates,
        "status": "diverged" if trained["diverged"] else "ok",
        "train_s": math.nan if train_s is None else train_s,
        "s_per_update": math.nan if train_s is None else train_s / run.updates,
        "score_s": score["score_s"] if score else math.nan,
        **{metric: metrics.get(metric, math.nan) for metric in RUN_METRICS},
        "run": str(run.folder),
    }


def _run_notes(run: Run, trained: dict, score: dict | None) -> list[str]:
    notes = []
    if trained["diverged"]:
        notes.append(trained["diverged"])
    elif trained["train_s"] is None:
        notes.append("trained before the study recorded times: no training time")
    elif trained["from_step"]:
        notes.append(f"resumed at step {trained['from_step']}: training time extrapolated from later steps")
    notes += (score or {}).get("notes", [])
    return [f"{run.loss} seed {run.seed}: {note}" for note in notes]


# ------------------------------------------------------------------------------------------- tables


def summarize(runs: pd.DataFrame, real: dict | None = None) -> pd.DataFrame:
    """One row per loss: steps, updates, finished and diverged seeds, mean and sample std (ddof 1) of
    FID and IS over the finished seeds, mean training time; plus the ``real-data`` row."""
    rows = []
    for loss, group in runs.groupby("loss", sort=False):
        done = group[group["status"] == "ok"]
        row = {
            "loss": loss,
            "steps": int(group["steps"].iloc[0]),
            "updates": int(group["updates"].iloc[0]),
            "seeds": len(done),
            "diverged": int((group["status"] == "diverged").sum()),
        }
        for metric in SUMMARY_METRICS:
            values = done[metric].to_numpy(dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["train_s_mean"] = float(group["train_s"].mean())
        rows.append(row)
    if real is not None:
        row = {"loss": REAL_DATA, "seeds": 1, "diverged": 0}
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = real["metrics"][metric], math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("steps", "updates"):
        table[column] = table[column].astype("Int64")
    return table


def _mean_std(mean: float, std: float) -> str:
    """``mean ± std`` (the std to the mean's decimals), ``mean`` alone without a std, ``-`` without both."""
    if math.isnan(mean):
        return "-"
    if math.isnan(std):
        return format_value(mean)
    return f"{mean:.2f} ± {std:.2f}" if abs(mean) >= 1 else f"{mean:.4g} ± {std:.2g}"


def _markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]


def _seconds(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"


def render_markdown(summary: pd.DataFrame, runs: pd.DataFrame, metadata: dict) -> str:
    """The study as Markdown: how it was made, the summary per loss, the runs, the recipes, the notes."""
    env = metadata["environment"]
    real = metadata.get("real_data")
    out = [
        "# dcgan on MNIST: six adversarial losses at the same budget",
        "",
        f"Generated {metadata['date']} by ganbench {metadata['code']['ganbench']} "
        f"(commit {metadata['code'].get('git_commit') or 'unknown'}), torch {env['torch']}, "
        f"{env['device']}: {env['device_name']}, {env['threads']} torch thread(s).",
        f"Regenerate with: `{metadata['command']}`",
        "",
        f"Budget: {metadata['updates']:,} network updates per run (a D update and a G update count one "
        f"each), from the `{metadata['base']}` config; steps = updates / (D + G updates per step). "
        f"Scores: the `mnist` task, {metadata['samples']:,} samples (latents of seed {EVAL_SEED}) against "
        f"the {metadata['reference_title']}; FID of the MNIST classifier's 128-d features, Inception "
        "Score of its logits. Cells are mean ± sample standard deviation (ddof 1) over the seeds that "
        "finished; a diverged run is counted, not scored. Training time: wall seconds per run.",
        "",
        "## Summary",
        "",
    ]
    rows = [
        [
            r["loss"],
            "" if pd.isna(r["steps"]) else f"{r['steps']:,}",
            "" if pd.isna(r["updates"]) else f"{r['updates']:,}",
            r["seeds"],
            r["diverged"],
            _mean_std(r["fid_mean"], r["fid_std"]),
            _mean_std(r["is_mean"], r["is_std"]),
            "" if r["loss"] == REAL_DATA else _seconds(r["train_s_mean"]),
        ]
        for r in summary.to_dict("records")
    ]
    out += _markdown_table(
        ["loss", "steps", "updates", "seeds", "diverged", "FID ↓", "IS ↑", "train s / run"], rows
    )
    if real is not None:
        out += ["", f"`{REAL_DATA}`: {real['source']}, scored like a generator (the quality ceiling)."]
    out += ["", "## Runs", ""]
    rows = [
        [
            r["loss"],
            r["seed"],
            f"{r['steps']:,}",
            f"{r['updates']:,}",
            r["status"],
            _seconds(r["train_s"]),
            "-" if math.isnan(r["s_per_update"]) else f"{r['s_per_update']:.3f}",
            format_value(r["fid"]),
            format_value(r["is"]),
        ]
        for r in runs.to_dict("records")
    ]
    out += _markdown_table(
        ["loss", "seed", "steps", "updates", "status", "train s", "s / update", "FID", "IS"], rows
    )
    out += ["", "## Recipes (what differs from the base config)", ""]
    for loss, changes in metadata["recipes"].items():
        out.append(f"- {loss}: " + ("; ".join(f"`{c}`" for c in changes) if changes else "the base config"))
    if metadata["notes"]:
        out += ["", "## Notes", ""] + [f"- {note}" for note in metadata["notes"]]
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------------- chart


def _bar_panel(draw, box, metric: str, summary: pd.DataFrame, runs: pd.DataFrame, font) -> None:
    """Bars of ``metric`` per loss (mean, error bar ± std, seeds as dots), the real data as a dashed line."""
    left, top, right, bottom = box
    losses = summary[summary["loss"] != REAL_DATA].to_dict("records")
    real = summary.loc[summary["loss"] == REAL_DATA, f"{metric}_mean"].dropna().tolist()
    finished = runs[runs["status"] == "ok"]
    better = "lower" if LOWER_IS_BETTER[metric] else "higher"
    title = f"{METRIC_TITLES[metric]} ({better} is better): mean ± std over seeds, seeds as dots"
    draw.text(((left + right) / 2, top - 22), title, fill="black", font=font, anchor="mb")
    draw.rectangle(box, outline="black")
    tops = [r[f"{metric}_mean"] + np.nan_to_num(r[f"{metric}_std"]) for r in losses]
    values = [v for v in (*tops, *finished[metric], *real) if not math.isnan(v)]
    y_high = 1.1 * max(values, default=0.0) or 1.0

    def y_pos(y: float) -> float:
        return bottom - y / y_high * (bottom - top)

    for tick in _ticks(0.0, y_high):
        y = y_pos(tick)
        draw.line((left + 1, y, right - 1, y), fill=(232, 232, 232))
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 6, y), f"{tick:g}", fill="black", font=font, anchor="rm")
    slot = (right - left) / max(1, len(losses))
    for i, row in enumerate(losses):
        center, color = left + (i + 0.5) * slot, COLORS[i % len(COLORS)]
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        draw.text((center, bottom + 6), row["loss"], fill="black", font=font, anchor="ma")
        if math.isnan(mean):
            draw.text((center, bottom - 8), "diverged", fill=color, font=font, anchor="mb")
            continue
        draw.rectangle((center - 0.3 * slot, y_pos(mean), center + 0.3 * slot, bottom), fill=color)
        if not math.isnan(std):
            low, high = y_pos(max(mean - std, 0.0)), y_pos(mean + std)
            draw.line((center, low, center, high), fill="black", width=2)
            for y in (low, high):
                draw.line((center - 6, y, center + 6, y), fill="black", width=2)
        dot_x = center + 0.15 * slot
        for value in finished.loc[finished["loss"] == row["loss"], metric]:
            y = y_pos(value)
            draw.ellipse((dot_x - 3, y - 3, dot_x + 3, y + 3), fill="white", outline="black")
    for value in real:
        y = y_pos(value)
        for x in range(left + 2, right - 2, 12):
            draw.line((x, y, min(x + 6, right - 2), y), fill=(90, 90, 90))
        draw.text((right - 4, y - 2), REAL_DATA, fill=(90, 90, 90), font=font, anchor="rb")


def render_chart(
    summary: pd.DataFrame, runs: pd.DataFrame, panel_size: tuple[int, int] = (640, 380)
) -> Image.Image:
    """FID and IS side by side: a bar per loss (mean) with error bars ± std, each seed a dot, and the
    real data as a dashed line."""
    width, height = panel_size
    image = Image.new("RGB", (width * len(SUMMARY_METRICS), height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    for i, metric in enumerate(SUMMARY_METRICS):
        box = (i * width + 60, 40, (i + 1) * width - 20, height - 40)
        _bar_panel(draw, box, metric, summary, runs, font)
    return image


# -------------------------------------------------------------------------------------------- study


def _check_choices(losses, seeds, updates: int, samples: int) -> None:
    unknown = [loss for loss in losses if loss not in LOSSES]
    if unknown or not losses:
        raise ConfigError(f"losses must be some of {', '.join(LOSS_NAMES)}; got {list(losses)}")
    if len(set(losses)) != len(losses) or len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"losses and seeds must be given once each; got {list(losses)}, {list(seeds)}")
    if any(seed < 0 for seed in seeds):
        raise ConfigError(f"seeds must be >= 0, got {list(seeds)}")
    if updates < 1 or samples < 2:
        raise ConfigError(f"need updates >= 1 and samples >= 2, got {updates}, {samples}")


def run_study(
    losses=LOSS_NAMES,
    seeds=DEFAULT_SEEDS,
    *,
    base: str = "cpu",
    updates: int = DEFAULT_UPDATES,
    samples: int = DEFAULT_SAMPLES,
    reference: str = "test",
    runs_dir: str | Path = "runs/loss-study",
    out: str | Path = "leaderboards/dcgan-losses",
    device: str = "cpu",
    progress: bool = True,
    command: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and score every (loss, seed) run that is not done yet, then write the tables and the chart
    (``out`` + ``.md``, ``.csv``, ``-runs.csv``, ``.png``). Returns ``(summary, runs)`` tables.

    Raises :class:`ConfigError` for bad choices and :class:`DataNotFoundError` when the scores cannot be
    computed (checked before any training).
    """
    losses, seeds = list(losses), [int(s) for s in seeds]
    _check_choices(losses, seeds, updates, samples)
    task = get_task("mnist", n=samples, reference=reference, inception=False, spread_subsets=0)
    missing = task.unavailable()
    if missing:
        raise DataNotFoundError(f"cannot score the study: {missing}")
    runs_dir = Path(runs_dir)
    plan = plan_runs(losses, seeds, base, updates, runs_dir)
    rows, notes = [], []
    bar = tqdm(plan, desc="loss study", unit="run", disable=not progress)
    for run in bar:
        bar.set_postfix(loss=run.loss, seed=run.seed)
        trained = train_run(run, device, progress)
        score = score_run(run, task, device, progress)
        rows.append(run_row(run, trained, score))
        notes += _run_notes(run, trained, score)
    real = score_real_data(task, runs_dir, device, progress)
    runs = pd.DataFrame(rows)
    summary = summarize(runs, real)
    metadata = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code_version(),
        "environment": environment(device),
        "command": command or "python -m reference_models.loss_study",
        "base": base,
        "updates": updates,
        "samples": samples,
        "reference_title": REFERENCE_TITLES[reference],
        "real_data": real,
        "recipes": {loss: recipe_changes(loss, base) for loss in losses},
        "notes": notes + [f"{REAL_DATA}: {note}" for note in real["notes"]],
    }
    _write_outputs(summary, runs, metadata, Path(out))
    return summary, runs


def _write_outputs(summary: pd.DataFrame, runs: pd.DataFrame, metadata: dict, out: Path) -> None:
    png = io.BytesIO()
    render_chart(summary, runs).save(png, format="PNG")
    atomic_write_text(out.with_name(out.name + "-runs.csv"), runs.to_csv(index=False))
    atomic_write_text(out.with_name(out.name + ".csv"), summary.to_csv(index=False))
    atomic_write_bytes(out.with_name(out.name + ".png"), png.getvalue())
    atomic_write_text(out.with_name(out.name + ".md"), render_markdown(summary, runs, metadata))


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m reference_models.loss_study``."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_models.loss_study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--losses", nargs="+", default=list(LOSS_NAMES), metavar="LOSS", help="losses (default: all six)")
    add("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="SEED", help="default: 0 1 2")
    add(
        "--updates",
        type=int,
        default=DEFAULT_UPDATES,
        help=f"network updates per run; a D and a G update count one each (default {DEFAULT_UPDATES})",
    )
    add("--config", default="cpu", help="base dcgan config (default cpu; tiny for smoke runs)")
    add("--samples", type=int, default=DEFAULT_SAMPLES, help=f"samples scored per run ({DEFAULT_SAMPLES})")
    add(
        "--reference",
        default="test",
        choices=("test", "embedded"),
        help="real digits the samples are compared with (default: the MNIST test set)",
    )
    add("--runs-dir", default="runs/loss-study", help="where the runs live (default runs/loss-study)")
    add("--out", default="leaderboards/dcgan-losses", help="output path without suffix")
    add("--device", default="cpu", help="cpu or cuda (default cpu)")
    add("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    add("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the study from the command line; ganbench errors print one line and exit with status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        summary, _ = run_study(
            args.losses,
            args.seeds,
            base=args.config,
            updates=args.updates,
            samples=args.samples,
            reference=args.reference,
            runs_dir=args.runs_dir,
            out=args.out,
            device=args.device,
            progress=not args.quiet,
            command=shlex.join(["python", "-m", "reference_models.loss_study", *argv]),
        )
    except GanbenchError as exc:
        print(f"loss_study: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(summary.to_string(index=False))
    print(f"wrote {args.out}.md, .csv, -runs.csv, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
