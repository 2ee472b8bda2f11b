"""``ganbench fid A B``: FID (optionally KID and precision/recall) between two sets of images.

A and B are each an image folder, an ``.npz`` of ``uint8`` images ``(N, H, W[, C])``, or a statistics
``.npz`` (``mu``/``sigma``, pytorch-fid compatible, as written by ``--save-stats-a/-b``).

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process extracts a shard of the images and the exact
statistics are summed over processes (:mod:`ganbench.distributed`); rank 0 prints and writes files.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganbench import distributed
from ganbench.cli import print_result
from ganbench.data.images import load_images
from ganbench.errors import FeatureMismatchError
from ganbench.features import EXTRACTOR_NAMES, FeatureExtractor, get_feature_extractor
from ganbench.metrics.frechet import FeatureStats, fid_from_stats
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.metrics.precision_recall import precision_recall


@dataclass
class Side:
    """One side of the comparison: its statistics and, when it came from images, its features."""

    path: str
    stats: FeatureStats
    features: torch.Tensor | None


def register(subparsers) -> None:
    """Add the ``fid`` sub-command."""
    parser = subparsers.add_parser(
        "fid",
        help="FID (and KID, precision/recall) between two image sets or statistics files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("a", help="image folder, .npz of uint8 images, or statistics .npz")
    parser.add_argument("b", help="image folder, .npz of uint8 images, or statistics .npz")
    parser.add_argument("--features", choices=EXTRACTOR_NAMES, default="inception",
                        help="feature extractor (default: inception, the standard FID network)")
    parser.add_argument("--weights", help="weights file for the feature extractor (default: its usual place)")
    parser.add_argument("--kid", action="store_true", help="also compute KID (needs images on both sides)")
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    parser.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (default 1000)")
    parser.add_argument("--pr", action="store_true", help="also compute improved precision/recall (k=3)")
    parser.add_argument("--batch-size", type=int, default=50, help="feature extraction batch size")
    parser.add_argument("--device", default=None, help="torch device for feature extraction (default cpu)")
    parser.add_argument("--save-stats-a", metavar="PATH", help="write A's statistics to this .npz")
    parser.add_argument("--save-stats-b", metavar="PATH", help="write B's statistics to this .npz")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def is_stats_file(path: str) -> bool:
    """True when ``path`` is an ``.npz`` holding ``mu``/``sigma`` statistics rather than images."""
    if Path(path).suffix != ".npz" or not Path(path).is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "mu" in archive.files
    except (OSError, ValueError):
        return False  # load_images reports the corrupt file with a typed error


def load_side(path: str, extractor: FeatureExtractor, args) -> Side:
    """Read statistics, or load images and extract their features and statistics (this process's
    shard of them, statistics summed over processes; features gathered only for KID/PR)."""
    if is_stats_file(path):
        return Side(path, FeatureStats.load(path), None)
    images = load_images(path)
    local = distributed.extract_features_sharded(extractor, images, batch_size=args.batch_size, device=args.device)
    stats = distributed.all_reduce_stats(FeatureStats.from_features(local, extractor.extractor_id))
    return Side(path, stats, distributed.gather_features(local) if args.kid or args.pr else None)


def run(args) -> int:
    """Compute and print the scores (on rank 0 under torchrun); exit code 0."""
    with distributed.from_env():
        return _run(args)


def _run(args) -> int:
    """The ``fid`` command inside the (possibly single-process) process group."""
    stats_inputs = [p for p in (args.a, args.b) if is_stats_file(p)]
    if stats_inputs and (args.kid or args.pr):
        raise FeatureMismatchError(
            f"--kid and --pr need images on both sides, but {', '.join(stats_inputs)} hold(s) only statistics"
        )
    extractor = get_feature_extractor(args.features, args.weights)
    side_a, side_b = load_side(args.a, extractor, args), load_side(args.b, extractor, args)
    if not distributed.is_main_process():
        return 0
    for side, target in ((side_a, args.save_stats_a), (side_b, args.save_stats_b)):
        if target:
            side.stats.save(target)

    fid = fid_from_stats(side_a.stats, side_b.stats)
    result = {"a": args.a, "b": args.b, "features": side_a.stats.extractor_id or extractor.extractor_id,
              "fid": fid["fid"], "n_a": fid["n_real"], "n_b": fid["n_fake"]}
    lines = [f"FID        {fid['fid']:.4f}   (n_a={fid['n_real']}, n_b={fid['n_fake']}, features={result['features']})"]
    if args.kid:
        kid = kernel_inception_distance(side_a.features, side_b.features, args.kid_subsets, args.kid_subset_size)
        result.update(kid_mean=kid["kid_mean"], kid_std=kid["kid_std"], kid_subset_size=kid["subset_size"],
                      kid_subsets=args.kid_subsets)
        lines.append(f"KID        {kid['kid_mean']:.6f} ± {kid['kid_std']:.6f}   "
                     f"({args.kid_subsets} subsets of {kid['subset_size']})")
    if args.pr:
        pr = precision_recall(side_a.features, side_b.features, k=3)
        result.update(precision=pr["precision"], recall=pr["recall"], pr_k=pr["k"])
        lines.append(f"precision  {pr['precision']:.4f}   recall {pr['recall']:.4f}   (k={pr['k']}, B against A)")
    print_result(result, args.json, "\n".join(lines))
    return 0
