"""Training configs: TOML files (read with :mod:`tomllib`) merged over the engine's defaults and checked.

A config is found by model and name, ``reference_models/configs/<model>/<name>.toml`` (``cpu``,
``paper``, ``tiny``...), or given as a file path. A file may say ``inherit = "paper"`` (another config
of the same model, or a path relative to the file): it is read first and the file's tables are merged
over it. Command-line overrides are ``"section.key=value"`` strings whose value is TOML (a bare word
is a string): ``train.steps=500``, ``data.name=fashion``, ``tricks.progressive.resolutions=[7, 14, 28]``.
Tables merge key by key, except that a ``[loss]`` or ``[optim.<player>]`` naming another loss or
optimizer replaces the inherited table (``--set optim.D.name=rmsprop --set optim.D.lr=5e-5``).

The result is a plain nested dict (JSON-serialisable, recorded in every checkpoint) with these tables:

* ``[model]`` ``name`` plus the model builder's keyword arguments (checked by the builder).
* ``[data]`` ``name`` (a registered data set), ``batch_size``, plus the data set's options.
* ``[loss]`` ``name`` (see :mod:`reference_models.losses`) plus the loss's options.
* ``[optim.G]``, ``[optim.D]`` ``name`` (``adam``, ``rmsprop``, ``sgd``) plus the torch optimizer's
  keyword arguments; one table per player of the model (a model without discriminator has no ``D``).
* ``[train]``, ``[lr_schedule]``, ``[tricks]``, ``[log]``: fixed keys, defaults in :data:`DEFAULTS`;
  an unknown key or a value of the wrong type is a :class:`ConfigError`.
"""

import copy
import tomllib
from pathlib import Path

from ganbench.errors import ConfigError

CONFIG_ROOT = Path(__file__).with_name("configs")

# Tables whose keys are fixed: every key, its default, and (from the default) its type.
DEFAULTS = {
    "train": {
        "steps": 1000,  # training steps; one step = n_critic D updates then n_gen G updates
        "seed": 0,
        "n_critic": 1,  # discriminator updates per step
        "n_gen": 1,  # generator updates per step
        "batch_per": "update",  # "update": new batch for every update of the first player; "step": one a step
        "amp": True,  # bf16 autocast on CUDA (no-op on CPU)
        "channels_last": True,  # channels_last memory format on CUDA (no-op on CPU)
        "max_abs_loss": 1e6,  # a loss beyond this (or NaN/Inf) stops training
    },
    "lr_schedule": {
        "name": "constant",  # constant, time_decay, exponential, warmup_cosine, warmup_cyclic
        "decay": 0.0,  # time_decay / exponential rate per step
        "warmup_steps": 0,
        "min_factor": 0.0,  # lowest lr / base lr of the cosine and cyclic schedules
        "cycle_steps": 1000,  # period of warmup_cyclic
    },
    "tricks": {
        "label_smoothing": 0.0,  # one-sided: the real target becomes 1 - label_smoothing
        "instance_noise": 0.0,  # std of Gaussian noise added to D's inputs at step 0
        "instance_noise_steps": 0,  # linear decay of that std to 0 over these steps (0: constant)
        "replay_size": 0,  # experience replay: past fakes kept for D (0: off)
        "replay_prob": 0.5,  # chance that a fake is swapped for a stored one once the buffer is full
        "d_dropout": 0.0,  # dropout probability after each discriminator activation
        "d_weight_penalty": 0.0,  # L2 penalty (sum of squared D parameters) added to D's loss
        "ema": 0.0,  # moving average of G's weights, used for samples and evaluation (0: off; e.g. 0.999)
        "init": "torch",  # torch (PyTorch default), xavier, he, normal (N(0, 0.02))
        "progressive": {  # progressive resolution of D's view, e.g. 7 -> 14 -> 28 with fade-in
            "resolutions": [],
            "phase_steps": 0,  # steps from the start of one resolution to the start of the next
            "fade_steps": 0,  # of which the first fade_steps blend the previous resolution out
        },
    },
    "log": {
        "every": 50,  # metrics to metrics.jsonl and the progress bar every N steps
        "sample_every": 500,  # sample grid and loss-curve PNGs every N steps (and at the end)
        "checkpoint_every": 500,  # checkpoint every N steps (and at the end)
        "keep_checkpoints": 3,  # older checkpoints are deleted
        "n_samples": 64,  # images in each sample grid
    },
}
# Tables with a required name and free options, checked by whatever they configure.
OPEN_TABLES = {"model": {}, "data": {"batch_size": 64}, "loss": {"name": "nonsaturating"}, "optim": {}}
TOP_LEVEL_KEYS = set(DEFAULTS) | set(OPEN_TABLES) | {"inherit"}


def config_dir(model: str) -> Path:
    """The folder of ``model``'s named configs."""
    return CONFIG_ROOT / model


def list_configs(model: str) -> list[str]:
    """Names of ``model``'s shipped configs (``["cpu", "paper", "tiny", ...]``)."""
    return sorted(path.stem for path in config_dir(model).glob("*.toml"))


def _is_path(source: str | Path) -> bool:
    return isinstance(source, Path) or str(source).endswith(".toml") or "/" in str(source)


def _resolve_source(model: str | None, source: str | Path) -> Path:
    if _is_path(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return path
    if model is None:
        raise ConfigError(f"config {source!r} is a name: say which model it belongs to")
    path = config_dir(model) / f"{source}.toml"
    if not path.is_file():
        available = ", ".join(list_configs(model)) or "none"
        raise ConfigError(
            f"model {model!r} has no config {source!r} (available: {available}); or pass a .toml path"
        )
    return path


def _read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read ``path`` with its ``inherit`` chain merged in (base first)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config inheritance loops: {' -> '.join(map(str, seen + (path,)))}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc}") from None
    parent = table.pop("inherit", None)
    if parent is None:
        return table
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: inherit must be a config name or path, got {parent!r}")
    parent_path = path.parent / (parent if _is_path(parent) else f"{parent}.toml")
    if not parent_path.is_file():
        raise ConfigError(f"{path}: inherited config {str(parent_path)!r} does not exist")
    return merge(_read_toml(parent_path, seen + (path,)), table)


def _renames(path: str, old: dict, new: dict) -> bool:
    """Whether ``new`` names another loss or optimizer than ``old`` (then it replaces ``old``)."""
    return (path == "loss" or path.startswith("optim.")) and "name" in new and new["name"] != old.get("name")


def merge(base: dict, update: dict, _path: str = "") -> dict:
    """Deep-merge ``update`` into a copy of ``base`` (tables merge, other values replace).

    A ``[loss]`` or ``[optim.<player>]`` table naming another loss or optimizer replaces the old table
    instead: the old options belong to the old choice (Adam's ``betas`` mean nothing to RMSprop).
    """
    merged = copy.deepcopy(base)
    for key, value in update.items():
        path = f"{_path}{key}"
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and not _renames(path, old, value):
            merged[key] = merge(old, value, f"{path}.")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict:
    """``"a.b=value"`` -> ``{"a": {"b": value}}`` with ``value`` read as TOML (bare words as strings)."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    for part in reversed(parts):
        value = {part: value}
    return value


def _check_fixed(table: dict, defaults: dict, where: str) -> dict:
    """Return ``defaults`` updated by ``table``; unknown keys and wrong types are :class:`ConfigError`."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table, got {table!r}")
    result = copy.deepcopy(defaults)
    for key, value in table.items():
        if key not in defaults:
            raise ConfigError(f"unknown key {where}.{key} (known: {', '.join(defaults)})")
        default = defaults[key]
        if isinstance(default, dict):
            result[key] = _check_fixed(value, default, f"{where}.{key}")
            continue
        expected = type(default)
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"{where}.{key} must be {expected.__name__}, got {value!r}")
        result[key] = value
    return result


def _check_open(config: dict) -> None:
    """Check the tables with free options: names present, optimizer tables well formed."""
    for table in ("model", "data", "loss"):
        name = config[table].get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"[{table}] needs a name")
    batch_size = config["data"]["batch_size"]
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size!r}")
    for player, options in config["optim"].items():
        if not isinstance(options, dict) or not isinstance(options.get("name"), str):
            raise ConfigError(f"[optim.{player}] must be a table with a name (adam, rmsprop, sgd)")


def _check_values(config: dict) -> None:
    """Range checks of the fixed tables."""
    train, tricks, log = config["train"], config["tricks"], config["log"]
    for key in ("steps", "n_critic", "n_gen"):
        if train[key] < 1:
            raise ConfigError(f"train.{key} must be at least 1, got {train[key]}")
    if train["batch_per"] not in ("update", "step"):
        raise ConfigError(f"train.batch_per must be 'update' or 'step', got {train['batch_per']!r}")
    if not 0.0 <= tricks["label_smoothing"] < 1.0:
        raise ConfigError(f"tricks.label_smoothing must be in [0, 1), got {tricks['label_smoothing']}")
    if not 0.0 <= tricks["ema"] < 1.0:
        raise ConfigError(f"tricks.ema must be in [0, 1) (0: off), got {tricks['ema']}")
    if not 0.0 <= tricks["d_dropout"] < 1.0:
        raise ConfigError(f"tricks.d_dropout must be in [0, 1), got {tricks['d_dropout']}")
    for key in ("instance_noise", "d_weight_penalty", "instance_noise_steps", "replay_size"):
        if tricks[key] < 0:
            raise ConfigError(f"tricks.{key} must be >= 0, got {tricks[key]}")
    for key in ("every", "sample_every", "checkpoint_every", "keep_checkpoints", "n_samples"):
        if log[key] < 1:
            raise ConfigError(f"log.{key} must be at least 1, got {log[key]}")


def resolve(table: dict, model: str | None = None) -> dict:
    """Merge a raw config table over the defaults and check it; returns the full config."""
    unknown = set(table) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(
            f"unknown config table(s) {sorted(unknown)} (known: {', '.join(sorted(TOP_LEVEL_KEYS))})"
        )
    config = {name: merge(defaults, table.get(name, {})) for name, defaults in OPEN_TABLES.items()}
    for name, defaults in DEFAULTS.items():
        config[name] = _check_fixed(table.get(name, {}), defaults, name)
    if model is not None:
        named = config["model"].setdefault("name", model)
        if named != model:
            raise ConfigError(f"the config is for model {named!r}, not {model!r}")
    _check_open(config)
    _check_values(config)
    return config


def load_config(model: str | None, source: str | Path, overrides=()) -> dict:
    """Load a config by ``model`` and name (``"cpu"``) or from a ``.toml`` path, apply ``overrides``.

    Returns the full checked config dict (see the module docstring); raises :class:`ConfigError`.
    """
    table = _read_toml(_resolve_source(model, source))
    for text in overrides:
        table = merge(table, parse_override(text))
    return resolve(table, model)
