"""``ganbench train``: train a reference GAN (gan, dcgan, cgan, ...) with the one training engine.

Examples::

    ganbench train dcgan --config cpu                      # ~10 minutes on 2 CPU cores
    ganbench train dcgan --config paper --device cuda      # the seed's full schedule
    ganbench train cgan --config cpu --set data.name=fashion --out runs/cgan-fashion
    ganbench train dcgan --config my.toml --steps 500 --resume

The run folder (``--out``, default ``runs/<model>-<config>``) receives ``config.json``,
``metrics.jsonl``, ``loss_curves.png``, ``samples/`` and ``checkpoints/``; ``--resume`` continues from
its latest checkpoint. Configs: ``reference_models/configs/<model>/<name>.toml``.

Several processes (data-parallel; see :mod:`reference_models.engine` and :mod:`ganbench.distributed`)::

    torchrun --nproc_per_node 4 -m ganbench train dcgan --config paper --device cuda   # 4 GPUs, NCCL
    torchrun --nproc_per_node 2 -m ganbench train dcgan --config tiny                  # 2 CPU processes, gloo

``data.batch_size`` is per process (the global batch is ``batch_size x processes``); only rank 0
writes the run folder and prints; ``--resume`` needs the same number of processes.
"""

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a reference GAN from a TOML config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="registered model name (gan, dcgan, cgan, ...)")
    parser.add_argument(
        "--config", default="cpu", help="config name (cpu, paper, tiny, ...) or a .toml file (default: cpu)"
    )
    parser.add_argument("--steps", type=int, help="total training steps (overrides train.steps)")
    parser.add_argument("--out", help="run folder (default: runs/<model>-<config>)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    parser.add_argument("--seed", type=int, help="random seed (overrides train.seed)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N); default cpu")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set data.name=fashion --set train.n_critic=5 (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others before failing (default: torch's)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train as asked (under torchrun: in the process group, NCCL for CUDA, gloo for the CPU); print
    where the run went (rank 0); return the exit code."""
    from ganbench import distributed

    backend = "nccl" if args.device.startswith("cuda") else "gloo"
    with distributed.from_env(backend, args.timeout):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    """The ``train`` command inside the (possibly single-process) process group."""
    from ganbench.distributed import print_main
    from reference_models import Trainer, load_config

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    config = load_config(args.model, args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / f"{args.model}-{Path(args.config).stem}"
    trainer = Trainer(config, out, device=args.device, resume=args.resume, progress=not args.quiet)
    metrics = trainer.train()
    losses = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.endswith("/loss"))
    print_main(f"{args.model}: step {trainer.step}/{trainer.total_steps}{'; ' + losses if losses else ''}")
    print_main(f"run folder: {out}; last checkpoint: {trainer.last_checkpoint}")
    return 0
