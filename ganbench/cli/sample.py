"""``ganbench sample``: draw a grid of images from a trained reference GAN's checkpoint.

Examples::

    ganbench sample runs/dcgan-cpu -n 64 --out grid.png          # latest checkpoint of a run
    ganbench sample runs/cgan-cpu/checkpoints/step_00004000.json -n 100 --seed 1

A conditional model (cgan) draws the classes 0, 1, 2, ... in turn, one class per grid column.
"""

import argparse
from pathlib import Path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers) -> None:
    """Add the ``sample`` sub-command."""
    parser = subparsers.add_parser(
        "sample",
        help="draw a sample grid from a trained GAN checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint", help="checkpoint record (.json), its .safetensors, or a run folder (latest)"
    )
    parser.add_argument("-n", type=_positive_int, default=64, help="number of images (default 64)")
    parser.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--columns", type=_positive_int, help="images per row (default: the model's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the grid; return the exit code."""
    import torch

    from reference_models import load_trained
    from reference_models.outputs import save_png
    from reference_models.plots import image_grid

    model, record = load_trained(args.checkpoint, args.device)
    images = model.sample(args.n, torch.Generator().manual_seed(args.seed))
    out = Path(args.out)
    save_png(image_grid(images.float().cpu(), args.columns or model.grid_columns(args.n)), out)
    print(f"{args.n} samples of {record['model']} (step {record['step']}) written to {out}")
    return 0
