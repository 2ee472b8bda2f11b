"""``ganbench score SOURCE --task T``: one generator (or ready samples) on one task, with intervals.

SOURCE is a reference_models checkpoint (record .json, .safetensors, or run folder), a TorchScript
generator, a plain state dict (.pt/.pth/.safetensors) with --arch MODEL[:CONFIG], ready samples (.npz of
uint8 images, optional labels; or an image folder), or builtin:bicubic / builtin:real-data /
builtin:untrained:MODEL[:CONFIG]. Nothing is unpickled: pickled code is refused.

The generation and translation tasks add the FID Inception metrics when its weights are present. On
a CPU the Inception is slow (a few images per second), so they use their own sample: 500 images a
side by default on the CPU, 10,000 on a GPU (--inception-samples N). FID depends on that N: it is
reported with it, and compares only with FIDs of the same N. --no-inception skips them.

Examples::

    ganbench score runs/dcgan-cpu --task mnist --seeds 0 1 2
    ganbench score runs/cgan-cpu-fashion --task fashion-cond --inception-samples 1000
    ganbench score runs/dcgan-cpu --task mnist --no-inception
    ganbench score samples.npz --task mnist-cond --set n=5000
    ganbench score gen.pt --task mnist --arch dcgan --latency
    ganbench score srgan.ts --task sr-x4 --kind image --input-range 0 1 --output-range -1 1
    ganbench score builtin:real-data --task mnist --set reference=embedded --set n=1000 --json
"""

import argparse
import json

from ganbench.cli import print_result
from ganbench.cli.run import add_inception_options, inception_options


def register(subparsers) -> None:
    """Add the ``score`` sub-command."""
    parser = subparsers.add_parser(
        "score",
        help="score a checkpoint, TorchScript generator, state dict or samples on a task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", help="checkpoint, TorchScript file, state dict, samples, or builtin:NAME")
    parser.add_argument(
        "--task", required=True, help="task name (ganbench.tasks.list_tasks(): mnist, sr-x4, ...)"
    )
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task option, value read as TOML (e.g. --set n=1000 --set inception=false); repeatable",
    )
    add_inception_options(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--arch", help="MODEL[:CONFIG] of a plain state dict (a reference_models model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--latency", action="store_true", help="also time the generator (batch 1 and --batch-size)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="throughput batch for --latency (default 64)"
    )
    ts = parser.add_argument_group("TorchScript conventions (override the archive's ganbench.json)")
    ts.add_argument("--kind", choices=("noise", "conditional", "image"))
    ts.add_argument("--latent-dim", type=int)
    ts.add_argument("--noise", choices=("normal", "uniform"))
    ts.add_argument("--num-classes", type=int)
    ts.add_argument("--input-range", type=float, nargs=2, metavar=("LOW", "HIGH"))
    ts.add_argument("--output-range", type=float, nargs=2, metavar=("LOW", "HIGH"))
    ts.add_argument("--multiple", type=int, help="image sides must be multiples of this (inputs are padded)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def task_options(items: list[str]) -> dict:
    """``["n=1000", "inception=false"]`` -> ``{"n": 1000, "inception": False}`` (values read as TOML)."""
    from reference_models.config import merge, parse_override

    options: dict = {}
    for item in items:
        options = merge(options, parse_override(item))
    return options


def run(args: argparse.Namespace) -> int:
    """Score and print; returns the exit code."""
    from ganbench.errors import ConfigError, DataNotFoundError
    from ganbench.generators import load_source
    from ganbench.scoring import score
    from ganbench.tasks import get_task, task_class

    options = task_options(args.options)
    known = task_class(args.task).defaults
    if args.inception_samples is not None and "inception_samples" not in known:
        raise ConfigError(f"task {args.task} has no Inception sample (--inception-samples)")
    # --no-inception asks for nothing on a task without Inception metrics
    options.update({k: v for k, v in inception_options(args).items() if k in known})
    task = get_task(args.task, **options)
    conventions = {
        "kind": args.kind,
        "latent_dim": args.latent_dim,
        "noise": args.noise,
        "num_classes": args.num_classes,
        "input_range": args.input_range,
        "output_range": args.output_range,
        "multiple": args.multiple,
    }
    reason = task.unavailable()
    if reason:
        raise DataNotFoundError(f"task {task.name} cannot run here: {reason}")
    source = load_source(args.source, arch=args.arch, conventions=conventions, task=task, device=args.device)
    batch_sizes = tuple(dict.fromkeys((1, args.batch_size)))
    result = score(
        source,
        task,
        args.seeds,
        args.device,
        latency=args.latency,
        progress=not args.quiet,
        batch_sizes=batch_sizes,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        print_result({}, False, result.format_table())
    return 0
