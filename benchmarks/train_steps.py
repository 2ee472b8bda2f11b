"""Training-step times of every reference model's CPU configs: do they train in 10 minutes on 2 cores?

For each config, the engine trains ``--steps`` steps (after ``--warmup`` steps that are not timed: data
preparation, first allocations) in a temporary run folder with sample grids and checkpoints switched
off, and the table gives seconds per step and the whole config's projected training time
(``train.steps`` x s/step; checkpoints, grids and data preparation add a few seconds). Run it on an
otherwise idle machine: the figures are wall-clock times.

    GANBENCH_DATA=../shared/data .venv/bin/python benchmarks/train_steps.py             # all cpu configs
    GANBENCH_DATA=../shared/data .venv/bin/python benchmarks/train_steps.py dcgan:cpu srgan:cpu --threads 1

``srgan:cpu`` starts from ``runs/srresnet-cpu`` (``model.init_from``); without that run it is timed
from a random generator (same cost per step).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from reference_models import Trainer, load_config

CPU_CONFIGS = [
    "gan:cpu",
    "dcgan:cpu",
    "dcgan:cpu-fashion",
    "cgan:cpu",
    "cgan:cpu-fashion",
    "srresnet:cpu",
    "srgan:cpu",
    "deblurgan:cpu",
    "cyclegan:cpu",
]
BUDGET_S = 600.0


def time_config(spec: str, steps: int, warmup: int) -> dict:
    """Seconds per step of ``model:config`` and its projected training time."""
    model, config_name = spec.split(":")
    config = load_config(model, config_name, ["log.sample_every=1000000", "log.checkpoint_every=1000000"])
    total = config["train"]["steps"]
    if model == "srgan" and not Path(config["model"].get("init_from", "")).exists():
        config["model"]["init_from"] = ""
    with tempfile.TemporaryDirectory() as folder:
        config["train"]["steps"] = warmup + steps
        trainer = Trainer(config, Path(folder) / "run", progress=False)
        trainer.train(stop_at=warmup)
        start = time.perf_counter()
        trainer.train()
        per_step = (time.perf_counter() - start) / steps
    return {"config": spec, "steps": total, "s_per_step": per_step, "projected_s": per_step * total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=CPU_CONFIGS, help="model:config (default: all cpu configs)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per config (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.2f}\n"
    )
    print("| config | train.steps | s/step | projected training | within 10 min |")
    print("|---|---|---|---|---|")
    for spec in args.configs:
        row = time_config(spec, args.steps, args.warmup)
        minutes = row["projected_s"] / 60
        print(
            f"| {spec} | {row['steps']:,} | {row['s_per_step']:.3f} | {minutes:.1f} min | "
            f"{'yes' if row['projected_s'] <= BUDGET_S else 'NO'} |",
            flush=True,
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
