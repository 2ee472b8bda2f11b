"""Everything a training run writes, in one place; only the main process (rank 0) writes.

Run folder layout::

    OUT/config.json            the full resolved config
    OUT/metrics.jsonl          one JSON line of metrics every log.every steps
    OUT/loss_curves.png        the */loss metrics against the step
    OUT/samples/step_XXXXXXXX.png   sample grids from fixed inputs
    OUT/checkpoints/step_XXXXXXXX.{safetensors,json}   see reference_models.checkpoint

Every file is written to a temporary name and moved into place. Under ``torchrun`` (DDP) only rank 0
writes: the engine makes one :class:`RunOutput` with ``enabled=is_main_process()``.
"""

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ganbench.files import atomic_path, atomic_write_text
from reference_models.checkpoint import list_checkpoints, save_checkpoint
from reference_models.plots import image_grid, loss_curves

__all__ = ["is_main_process", "RunOutput", "read_metrics"]


def is_main_process() -> bool:
    """True unless this is a non-zero rank of an initialised process group."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def save_png(image, path: Path) -> None:
    """Save a PIL image as PNG atomically."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (an unreadable last line, from a crash, is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class RunOutput:
    """The files of one run under ``root``; every method does nothing when ``enabled`` is false."""

    def __init__(self, root: str | os.PathLike, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled
        self.checkpoint_dir = self.root / "checkpoints"
        self.metrics_path = self.root / "metrics.jsonl"
        if enabled:
            self.root.mkdir(parents=True, exist_ok=True)

    def save_config(self, config: dict) -> None:
        if self.enabled:
            atomic_write_text(self.root / "config.json", json.dumps(config, indent=2, sort_keys=True))

    def reset_metrics(self, records: list[dict]) -> None:
        """Rewrite ``metrics.jsonl`` with ``records`` (on resume: drop lines past the checkpoint)."""
        if self.enabled:
            atomic_write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))

    def append_metrics(self, record: dict) -> None:
        if self.enabled:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def save_samples(self, images: torch.Tensor, step: int, columns: int) -> Path:
        path = self.root / "samples" / f"step_{step:08d}.png"
        if self.enabled:
            save_png(image_grid(images, columns), path)
        return path

    def save_curves(self, history: list[dict]) -> None:
        if self.enabled:
            save_png(loss_curves(history), self.root / "loss_curves.png")

    def save_checkpoint(self, step: int, tensors: dict, record: dict, keep: int) -> Path:
        """Write a checkpoint, then delete all but the newest ``keep``; returns the record's path."""
        path = self.checkpoint_dir / f"step_{step:08d}.json"
        if not self.enabled:
            return path
        path = save_checkpoint(self.checkpoint_dir, step, tensors, record)
        for old in list_checkpoints(self.checkpoint_dir)[:-keep]:
            old.unlink()
            old.with_suffix(".safetensors").unlink(missing_ok=True)
        return path
