"""``ganbench sr-baseline``: PSNR/SSIM of bicubic upscaling on an SR test set (the baseline row of
every super-resolution table)."""

import argparse

from ganbench.cli import print_result
from ganbench.sr import SR_DATASETS, bicubic_baseline


def scale_factor(text: str) -> int:
    """argparse type: an integer upscaling factor >= 2."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"scale must be an integer >= 2, got {text!r}")
    return value


def register(subparsers) -> None:
    """Add the ``sr-baseline`` sub-command."""
    parser = subparsers.add_parser(
        "sr-baseline",
        help="PSNR/SSIM of MATLAB-bicubic upscaling on Set5/Set14/BSD100 or a folder of HR images",
        description=(
            "For each HR image: crop to a multiple of SCALE, LR = imresize(HR, 1/SCALE), "
            "SR = imresize(LR, SCALE) (MATLAB bicubic, uint8), then PSNR/SSIM on the BT.601 Y channel "
            "with a SCALE-pixel border removed. Prints per-image and mean values."
        ),
    )
    parser.add_argument(
        "--dataset", required=True,
        help=f"{', '.join(SR_DATASETS)} ($GANBENCH_DATA/sr/NAME/HR) or a folder of HR images",
    )
    parser.add_argument(
        "--scale", type=scale_factor, default=4, help="upscaling factor, an integer >= 2 (default 4)"
    )
    parser.add_argument("--data-root", default=None, help="data root (default: $GANBENCH_DATA)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def format_table(result: dict) -> str:
    """Render a :func:`~ganbench.sr.bicubic_baseline` result as a plain-text table."""
    width = max(len("mean"), *(len(row["name"]) for row in result["images"]))
    lines = [
        f"bicubic x{result['scale']} on {result['dataset']} ({result['hr_dir']}), Y channel, "
        f"border {result['scale']}",
        f"{'image':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}",
    ]
    lines += [f"{r['name']:<{width}}  {r['psnr']:>9.2f}  {r['ssim']:>6.4f}" for r in result["images"]]
    lines.append(f"{'mean':<{width}}  {result['mean_psnr']:>9.2f}  {result['mean_ssim']:>6.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Score the bicubic baseline and print it; returns the exit code."""
    result = bicubic_baseline(args.dataset, args.scale, root=args.data_root)
    print_result(result, args.json, format_table(result))
    return 0
