"""Training checkpoints: one safetensors file with every tensor plus a JSON record, written atomically.

A checkpoint of step ``s`` is the pair ``step_{s:08d}.safetensors`` / ``step_{s:08d}.json`` in a run's
``checkpoints/`` folder. Each file is written to a temporary name and moved into place
(``os.replace``); the JSON record goes last and holds the sha256 of the tensor file, so a checkpoint
exists once its record does, and a torn or mismatched pair is refused on loading.

Tensor names: ``model.<state_dict key>`` (networks), ``optim.<player>.<param index>.<state key>``
(optimizer moments), ``rng.<name>`` (RNG states as uint8), ``extra.<name>`` (trick state such as the
replay buffer). The record (:data:`FORMAT`, version :data:`FORMAT_VERSION`) holds ``model``,
``step``, ``seed``, ``config``, ``data`` (data set and sampler position), ``code_version``
(``ganbench.__version__`` and the git commit when known), ``metrics`` (the last logged), the
optimizers' non-tensor state, and ``tensors`` (file name and sha256).

Nothing is unpickled: tensors come from safetensors, everything else from JSON.
"""

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import ganbench
from ganbench.errors import CheckpointError
from ganbench.files import atomic_path, atomic_write_text, sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "list_checkpoints",
    "code_version",
    "optimizer_state",
    "load_optimizer_state",
]

FORMAT = "ganbench-training-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format",
    "format_version",
    "model",
    "step",
    "seed",
    "config",
    "data",
    "tensors",
    "optimizers",
)
_NAME = re.compile(r"^step_(\d{8})\.json$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: its JSON record, its tensors, and the record's path."""

    record: dict
    tensors: dict[str, torch.Tensor]
    path: Path

    def tensors_with_prefix(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors named ``prefix + key``, keyed by ``key``."""
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}


def code_version() -> dict:
    """``{"ganbench": version, "git_commit": sha or None}`` of the running code."""
    repo = Path(__file__).resolve().parents[1]
    commit = None
    if (repo / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            )
            commit = (done.stdout.strip() or None) if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"ganbench": ganbench.__version__, "git_commit": commit}


def save_checkpoint(directory: str | os.PathLike, step: int, tensors: dict, record: dict) -> Path:
    """Write the checkpoint of ``step`` into ``directory``; returns the record's path.

    ``record`` gets ``format``, ``format_version`` and ``tensors`` (file name and sha256) added.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"step_{step:08d}"
    tensor_path, record_path = directory / f"{stem}.safetensors", directory / f"{stem}.json"
    flat = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    with atomic_path(tensor_path) as tmp:
        save_file(flat, tmp, metadata={"format": FORMAT})
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **record}
    full["tensors"] = {"file": tensor_path.name, "sha256": sha256_file(tensor_path)}
    atomic_write_text(record_path, json.dumps(full, indent=2, sort_keys=True))
    return record_path


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Record paths of the checkpoints in ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def _record_path(path: Path) -> Path:
    """The record a path names: a record, its tensor file, a checkpoints folder or a run folder."""
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = list_checkpoints(folder)
        if not found:
            raise CheckpointError(f"no checkpoint (step_*.json) in {str(folder)!r}")
        return found[-1]
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"checkpoint record {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and verify a checkpoint (record path, tensor path, or folder: its latest checkpoint).

    Raises :class:`CheckpointError` for a missing, unreadable, tampered or malformed checkpoint.
    """
    record_path = _record_path(Path(path))
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{record_path}: not a readable JSON checkpoint record ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{record_path}: not a {FORMAT} record")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise CheckpointError(f"{record_path}: record lacks {missing}")
    if record["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{record_path}: format version {record['format_version']}, expected {FORMAT_VERSION}"
        )
    info = record["tensors"]
    if not isinstance(info, dict) or not isinstance(info.get("file"), str) or "/" in info["file"]:
        raise CheckpointError(f"{record_path}: malformed 'tensors' entry {info!r}")
    tensor_path = record_path.parent / info["file"]
    if not tensor_path.is_file():
        raise CheckpointError(f"{record_path}: tensor file {str(tensor_path)!r} is missing")
    if sha256_file(tensor_path) != info.get("sha256"):
        raise CheckpointError(f"{tensor_path}: sha256 differs from the record (truncated or modified file)")
    try:
        tensors = load_file(tensor_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{tensor_path}: not a readable safetensors file ({exc})") from None
    return Checkpoint(record, tensors, record_path)


def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer's state into ``({prefix.i.key: tensor}, JSON-able rest)``."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict, rest: dict) -> None:
    """Inverse of :func:`optimizer_state`; ``tensors`` are keyed ``"i.key"`` (prefix removed)."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = value
    for index, entries in rest["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"optimizer state does not fit the model: {exc}") from None
