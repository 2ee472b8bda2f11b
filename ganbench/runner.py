"""``ganbench run``: evaluate models x tasks x seeds from a suite file and write a leaderboard.

A suite is a TOML file::

    name = "mnist"                       # writes <out>/mnist.{csv,md,html,json,png}
    description = "DCGAN and cGAN on MNIST"
    seeds = [0, 1, 2]
    published = true                     # default: add published rows (ganbench/published.toml)
    runs_dir = "runs"                    # default: where `run = ...` models are (from the working
                                         # folder, as `ganbench train` writes them); --runs-dir
    inception = "auto"                   # default for the tasks with Inception metrics ("auto", true,
                                         # false); --no-inception sets false
    inception_samples = 0                # default for them: images a side, 0 = 500 on the CPU and
                                         # 10,000 on a GPU; --inception-samples N

    [latency]                            # optional; these are the defaults
    enabled = true
    batch_sizes = [1, 64]
    devices = []                         # [] = the CPU, and the GPU when there is one
    warmup = 3
    repeats = 20
    min_time_s = 0.5
    max_time_s = 10.0

    [tasks.mnist]                        # a task (the table name, or `task = "..."` for a second
    n = 10000                            # copy with other options) and its options; these win over
    [tasks.mnist-quick]                  # the suite-level inception keys, the command line over both
    task = "mnist"
    n = 1000

    [[models]]
    name = "dcgan"                       # shown in the table
    config = "cpu"                       # shown in the table
    source = "../runs/dcgan-cpu"         # see ganbench.generators.load_source; paths relative to this file
    arch = ""                            # MODEL[:CONFIG] for a plain state dict
    tasks = ["mnist", "mnist-quick"]

    [[models]]
    name = "cgan"
    config = "cpu-fashion"
    run = "cgan-cpu-fashion"             # instead of source: the run folder <runs_dir>/cgan-cpu-fashion
    train = "ganbench train cgan --config cpu-fashion"  # how to make it (shown when it is missing)
    tasks = ["fashion-cond"]

Every finished evaluation (model, task, seed) and latency profile is saved atomically in
``<out>/.<name>.run/`` and kept: a killed run started again, or the suite run again after one model was
retrained, computes only what is not there. A unit's key holds the model entry, a fingerprint of what it
computes with (the generator's weights and calling conventions, or the samples' bytes; see
:func:`source_fingerprint`), the task options, the seed, the device and the ganbench version, so a
retrained checkpoint or an edited suite is evaluated again; units no longer in the suite are deleted
when the leaderboard is written, and ``--fresh`` starts from nothing. Tasks whose data or weights are
missing are skipped, and the reason is recorded in the leaderboard's metadata. A model whose checkpoint
is missing stops the run before anything is computed, with a :class:`~ganbench.errors.DataNotFoundError`
naming the model, the path and the ``train`` command; with ``skip_missing`` (``--skip-missing``) its
rows are skipped instead, and recorded like the skipped tasks. Without a suite, the built-in quick suite
runs (``ganbench/suites/quick.toml``: the embedded MNIST sample, offline, about a minute on two cores);
``ganbench/suites/zoo-cpu.toml`` scores every reference model's CPU checkpoint.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch

import ganbench
from ganbench.errors import ConfigError, DataNotFoundError
from ganbench.files import atomic_write_text
from ganbench.generators import Generator, load_source
from ganbench.latency import available_devices, environment, profile_generator
from ganbench.leaderboard import make_table, published_row, result_row, write_leaderboard
from ganbench.scoring import ScoreResult, check_source, combine, evaluate_seed, seeds_for
from ganbench.tasks import get_task, task_class
from ganbench.tasks.base import SeedResult, check_options

__all__ = [
    "QUICK_SUITE",
    "SUITES_DIR",
    "Suite",
    "ModelEntry",
    "TaskEntry",
    "suite_file",
    "load_suite",
    "run_suite",
    "RunState",
    "source_fingerprint",
]

SUITES_DIR = Path(__file__).with_name("suites")  # the built-in suites
QUICK_SUITE = SUITES_DIR / "quick.toml"
LATENCY_DEFAULTS = {
    "enabled": True,
    "batch_sizes": [1, 64],
    "devices": [],
    "warmup": 3,
    "repeats": 20,
    "min_time_s": 0.5,
    "max_time_s": 10.0,
}
INTERVAL_NOTE = (
    "95%: percentile bootstrap of the mean over images (per-image metrics); Student-t over seeds, or over "
    "K disjoint sample subsets scaled by 1/sqrt(K) with one seed (distribution metrics)"
)
INCEPTION_KEYS = ("inception", "inception_samples")  # suite-level defaults of the tasks that have them
SUITE_KEYS = {
    "name",
    "description",
    "seeds",
    "published",
    "runs_dir",
    "latency",
    "tasks",
    "models",
    *INCEPTION_KEYS,
}
MODEL_KEYS = {"name", "config", "source", "run", "train", "arch", "tasks"}
DEFAULT_RUNS_DIR = "runs"  # where `ganbench train` puts run folders (relative to the working folder)


@dataclass
class TaskEntry:
    """A task of a suite: its label in the table, the registered task and its options."""

    label: str
    task: str
    options: dict


@dataclass
class ModelEntry:
    """A model of a suite: its table name and config label, what to load, and the task labels to run."""

    name: str
    config: str
    source: str
    arch: str
    tasks: list[str]
    train: str = ""  # the command that makes the checkpoint (shown when it is missing)
    run: bool = False  # source is a training run folder (`run = ...`)

    def key(self) -> dict:
        return {"name": self.name, "config": self.config, "source": self.source, "arch": self.arch}


@dataclass
class Suite:
    """A parsed suite file (see the module docstring)."""

    name: str
    description: str
    seeds: list[int]
    published: bool
    latency: dict
    tasks: dict[str, TaskEntry]
    models: list[ModelEntry]
    path: Path | None = None
    runs_dir: Path | None = None


def _resolve(source: str, base: Path) -> str:
    """A source relative to the suite's folder (built-ins and absolute paths unchanged)."""
    if source.startswith("builtin:"):
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _task_options(task_name: str, suite_level: dict, options: dict, overrides: dict) -> dict:
    """A ``[tasks.*]`` table's ``options`` over the suite-level defaults, under the command-line
    ``overrides``; suite-level and command-line keys go only to tasks that have them."""
    known = task_class(task_name).defaults
    return {
        **{k: v for k, v in suite_level.items() if k in known},
        **options,
        **{k: v for k, v in overrides.items() if k in known},
    }


def _model_entry(
    entry: dict, index: int, tasks: dict, base: Path, runs_dir: Path, where: str
) -> ModelEntry:
    """A ``[[models]]`` table, checked; ``source`` is resolved from the suite's folder, ``run`` from
    ``runs_dir``."""
    unknown = set(entry) - MODEL_KEYS
    if unknown or "name" not in entry or ("source" in entry) == ("run" in entry):
        raise ConfigError(
            f"{where}: models[{index}] needs a name and either source or run "
            f"(keys: {', '.join(sorted(MODEL_KEYS))}); unknown: {sorted(unknown)}"
        )
    labels = entry.get("tasks", list(tasks))
    missing = [label for label in labels if label not in tasks]
    if missing:
        raise ConfigError(
            f"{where}: model {entry['name']!r} names task(s) {missing} without a [tasks.*] table"
        )
    if "source" in entry:
        source = _resolve(str(entry["source"]), base)
    else:
        source = str((runs_dir / str(entry["run"])).resolve())
    return ModelEntry(
        str(entry["name"]),
        str(entry.get("config", "")),
        source,
        str(entry.get("arch", "")),
        list(labels),
        str(entry.get("train", "")),
        "run" in entry,
    )


def suite_file(spec: str | os.PathLike) -> Path:
    """The file ``spec`` names: a path, or the name of a built-in suite (``SUITES_DIR/<name>.toml``)."""
    path = Path(spec)
    builtin = SUITES_DIR / f"{spec}.toml"
    return builtin if not path.exists() and not path.suffix and builtin.is_file() else path


def load_suite(
    path: str | os.PathLike | None = None,
    *,
    runs_dir: str | os.PathLike | None = None,
    task_overrides: dict | None = None,
) -> Suite:
    """Read and check a suite file (``None``: the built-in quick suite); raises :class:`ConfigError`.

    Args:
        path: the suite file or a built-in suite's name (:func:`suite_file`).
        runs_dir: where ``run = ...`` models are, instead of the suite's ``runs_dir`` (default ``runs``,
            from the working folder).
        task_overrides: options for every task that has them, over the suite's (e.g.
            ``{"inception": False}`` from ``--no-inception``).
    """
    path = suite_file(path) if path is not None else QUICK_SUITE
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        builtins = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
        raise ConfigError(f"cannot read suite {str(path)!r}: {exc} (built-in suites: {builtins})") from None
    where = f"suite {path}"
    unknown = set(table) - SUITE_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(SUITE_KEYS))})"
        )
    name = table.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"{where}: name must be a file-name-safe string, got {name!r}")
    seeds = table.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")
    runs_dir = runs_dir if runs_dir is not None else table.get("runs_dir", DEFAULT_RUNS_DIR)
    if not isinstance(runs_dir, (str, os.PathLike)) or not str(runs_dir):
        raise ConfigError(f"{where}: runs_dir must be a folder path, got {runs_dir!r}")
    runs_dir = Path(runs_dir).expanduser()
    latency = check_options(LATENCY_DEFAULTS, table.get("latency", {}), f"{where} [latency]")
    suite_level = {key: table[key] for key in INCEPTION_KEYS if key in table}
    tasks = {}
    for label, options in table.get("tasks", {}).items():
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: [tasks.{label}] must be a table of options")
        options = dict(options)
        task_name = options.pop("task", label)
        options = _task_options(task_name, suite_level, options, task_overrides or {})
        get_task(task_name, **options)  # checks the task name and its options now
        tasks[label] = TaskEntry(label, task_name, options)
    models = [
        _model_entry(entry, index, tasks, path.parent, runs_dir, where)
        for index, entry in enumerate(table.get("models", []))
    ]
    if not models:
        raise ConfigError(f"{where}: no [[models]]")
    return Suite(
        name,
        str(table.get("description", "")),
        seeds,
        bool(table.get("published", True)),
        latency,
        tasks,
        models,
        path,
        runs_dir,
    )


class RunState:
    """Finished units of a suite's runs, one JSON file each in ``folder``, written atomically."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.used: set[str] = set()  # keys looked up or saved in this run

    @staticmethod
    def _key(unit: dict) -> str:
        return hashlib.sha256(json.dumps(unit, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def get(self, unit: dict):
        """The saved value of ``unit``, or None."""
        key = self._key(unit)
        self.used.add(key)
        try:
            saved = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return saved["value"] if saved.get("unit") == json.loads(json.dumps(unit, default=str)) else None

    def put(self, unit: dict, value) -> None:
        key = self._key(unit)
        self.used.add(key)
        atomic_write_text(self.folder / f"{key}.json", json.dumps({"unit": unit, "value": value}, default=str))

    def prune(self) -> None:
        """Delete the saved units this run did not use (models or tasks no longer in the suite)."""
        for path in self.folder.glob("*.json"):
            if path.stem not in self.used:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# the Generator fields that change what a network's output means (see ganbench.generators.Generator)
CALLING_CONVENTIONS = (
    "kind", "latent_dim", "noise", "num_classes", "input_range", "output_range", "channels", "multiple"
)


def _hash_tensors(digest, tensors: dict) -> None:
    """Feed each tensor's name, dtype, shape and bytes (in name order) to ``digest``."""
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def source_fingerprint(source) -> str:
    """sha256 of what ``source`` computes with: a generator's weights (``module.state_dict()``, its
    reverse network's too) and calling conventions, or a sample set's images and labels."""
    digest = hashlib.sha256()
    if isinstance(source, Generator):
        for generator in (source, source.reverse):
            if generator is None:
                continue
            conventions = {name: getattr(generator, name) for name in CALLING_CONVENTIONS}
            digest.update(json.dumps(conventions, sort_keys=True).encode())
            if generator.module is not None:
                _hash_tensors(digest, generator.module.state_dict())
            else:  # a built-in function: its description names it
                digest.update(json.dumps(generator.source, sort_keys=True, default=str).encode())
    else:
        tensors = {"images": source.images}
        if source.labels is not None:
            tensors["labels"] = torch.as_tensor(source.labels)
        _hash_tensors(digest, tensors)
    return digest.hexdigest()


def _display_path(path) -> str:
    """``path`` relative to the working folder when it is inside it (tables do not carry home folders)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _environment(devices: list[str]) -> dict:
    return {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "devices": {device: environment(device) for device in devices},
    }


def _load_model(model: ModelEntry, device: str):
    """The generator (or samples) of ``model``; a missing checkpoint (a run folder without one, or a
    path that does not exist) raises :class:`DataNotFoundError` naming the model and how to make it."""
    shown = _display_path(model.source)
    make = f"; make it with `{model.train}`" if model.train else ""
    if model.run and not any((Path(model.source) / "checkpoints").glob("step_*.json")):
        raise DataNotFoundError(
            f"model {model.name!r} ({model.config}): no checkpoint in run folder {shown}{make}"
        )
    try:
        return load_source(model.source, arch=model.arch or None, device=device)
    except DataNotFoundError as exc:
        reason = str(exc).replace(model.source, shown)
        raise DataNotFoundError(f"model {model.name!r} ({model.config}): {reason}{make}") from None


def _plan(
    suite: Suite, tasks: dict, device: str, skip_missing: bool = False
) -> tuple[list[tuple], list[dict]]:
    """Load every source and check it fits its tasks before anything is computed.

    Returns ``[(model, task label, source)]`` and the skipped ``{"model", "task", "reason"}``: tasks
    that cannot run here and, with ``skip_missing``, models whose checkpoint is missing.
    """
    unavailable = {label: task.unavailable() for label, task in tasks.items()}
    plan, skipped = [], []
    for model in suite.models:
        labels = [label for label in model.tasks if not unavailable[label]]
        skipped += [
            {"model": model.name, "task": label, "reason": unavailable[label]}
            for label in model.tasks
            if unavailable[label]
        ]
        if not labels:
            continue
        loaded = None
        if model.source != "builtin:real-data":  # each task holds its own real data
            try:
                loaded = _load_model(model, device)
            except DataNotFoundError as exc:
                if not skip_missing:
                    raise DataNotFoundError(f"{exc} (or skip it: --skip-missing)") from None
                skipped += [{"model": model.name, "task": label, "reason": str(exc)} for label in labels]
                continue
        for label in labels:
            source = loaded if loaded is not None else load_source(model.source, task=tasks[label])
            check_source(tasks[label], source)
            plan.append((model, label, source))
    return plan, skipped


def _evaluate(
    suite: Suite,
    state: RunState,
    entry: tuple,
    tasks: dict,
    device: str,
    devices: list[str],
    progress: bool,
    step: str,
) -> ScoreResult:
    """One leaderboard row: every seed and the latency, each taken from ``state`` when already done."""
    model, label, source = entry
    task = tasks[label]
    unit = {
        "model": model.key(),
        "fingerprint": source_fingerprint(source),
        "task": suite.tasks[label].__dict__,
        "device": device,
        "ganbench": ganbench.__version__,
    }
    seeds = seeds_for(task, source, suite.seeds)
    results = []
    for seed in seeds:
        saved = state.get({**unit, "kind": "seed", "seed": seed})
        if saved is None:
            if progress:
                _say(f"{step} {model.name} ({model.config}) on {label}, seed {seed}")
            saved = evaluate_seed(task, source, seed, device, progress).to_dict()
            state.put({**unit, "kind": "seed", "seed": seed}, saved)
        results.append(SeedResult.from_dict(saved))
    latency = None
    if suite.latency["enabled"] and isinstance(source, Generator):
        latency_unit = {**unit, "kind": "latency", "latency": suite.latency}
        latency = state.get(latency_unit)
        if latency is None:
            if progress:
                _say(f"{step} {model.name} ({model.config}) latency on {label}")
            timing = {k: suite.latency[k] for k in ("warmup", "repeats", "min_time_s", "max_time_s")}
            batch_sizes = tuple(suite.latency["batch_sizes"])
            latency = profile_generator(source, task.latency_inputs, batch_sizes, devices, **timing)
            state.put(latency_unit, latency)
    return combine(task, source.source, seeds, results, latency)


def _metadata(
    suite: Suite,
    tasks: dict,
    rows: list[dict],
    skipped: list[dict],
    published: dict[str, str],
    devices: list[str],
    command: str | None,
) -> dict:
    """The leaderboard's sidecar (see :mod:`ganbench.leaderboard`)."""
    from reference_models.checkpoint import code_version

    return {
        "ganbench": ganbench.__version__,
        "commit": code_version()["git_commit"],
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or f"ganbench run {_display_path(suite.path)}",
        "environment": _environment(devices),
        "suite": {
            "name": suite.name,
            "description": suite.description,
            "path": _display_path(suite.path),
            "seeds": suite.seeds,
            "latency": suite.latency,
            "runs_dir": _display_path(suite.runs_dir) if suite.runs_dir else None,
        },
        "tasks": {
            label: {
                "task": task.name,
                "options": task.options,
                "primary_metric": task.primary_metric,
                "metrics": {s.name: s.to_dict() for s in task.metric_specs()},
            }
            for label, task in tasks.items()
        },
        "rows": rows,
        "skipped": skipped,
        "published": published,
        "extractors": sorted({v for row in rows for v in row["extractors"].values()}),
        "interval": INTERVAL_NOTE,
    }


def run_suite(
    suite: Suite,
    out_dir: str | os.PathLike = "leaderboards",
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    skip_missing: bool = False,
) -> dict[str, Path]:
    """Run ``suite`` (see the module docstring); returns the paths of the leaderboard files.

    ``skip_missing``: skip (and record) models whose checkpoint is missing instead of stopping.
    """
    out_dir = Path(out_dir)
    state = RunState(out_dir / f".{suite.name}.run")
    tasks = {label: get_task(entry.task, **entry.options) for label, entry in suite.tasks.items()}
    devices = suite.latency["devices"] or available_devices()
    plan, skipped = _plan(suite, tasks, device, skip_missing)
    rows, row_info = [], []
    for step, (model, label, source) in enumerate(plan, start=1):
        step_text = f"[{step}/{len(plan)}]"
        result = _evaluate(suite, state, (model, label, source), tasks, device, devices, progress, step_text)
        rows.append(result_row(model.name, model.config, result, label))
        source_info = {k: _display_path(v) if k == "path" else v for k, v in result.source.items()}
        row_info.append(
            {
                "model": model.name,
                "config": model.config,
                "task": label,
                "source": source_info,
                "seeds": result.seeds,
                "counts": result.counts,
                "extractors": result.extractors,
                "notes": result.notes,
            }
        )
    published = {}  # source -> the convention its numbers follow
    if suite.published:
        for label, task in tasks.items():
            for entry in task.published():
                rows.append(published_row(label, entry))
                published[entry["source"]] = entry["convention"]
    metadata = _metadata(suite, tasks, row_info, skipped, published, devices, command)
    paths = write_leaderboard(make_table(rows), metadata, out_dir, suite.name)
    state.prune()
    return paths
