"""``ganbench compare NEW BASELINE``: the regression gate between two leaderboards.

NEW and BASELINE are leaderboards (NAME.csv, NAME.json or NAME). Exit status 1 when a metric of a
baseline row got worse beyond its recorded interval by more than its tolerance, or when a baseline row
or metric is missing from NEW; 0 otherwise. Tolerances are in the metric's units or in percent of the
baseline value; latency columns are compared only when a tolerance names them. Rows scored with other
feature extractors or task options than the baseline's are reported as not comparable (exit 1).

Examples::

    ganbench compare leaderboards/quick.csv baseline/quick.csv
    ganbench compare new/mnist.csv leaderboards/mnist.csv --tolerance fid=0.5 --tolerance is=2%
    ganbench compare new/sr.csv leaderboards/sr.csv --tolerance cpu_b1_ms=20%
"""

import argparse
import json


def register(subparsers) -> None:
    """Add the ``compare`` sub-command."""
    parser = subparsers.add_parser(
        "compare",
        help="compare a leaderboard with a baseline; exit 1 on a regression",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("new", help="the new leaderboard")
    parser.add_argument("baseline", help="the baseline leaderboard")
    parser.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="METRIC=VALUE[%]",
        help="allowed slack beyond the intervals, e.g. fid=0.5 or psnr_y=1%% (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare and print; exit code 1 on a regression or a missing row/metric, else 0."""
    from ganbench.compare import compare_tables
    from ganbench.leaderboard import read_leaderboard

    new, new_metadata = read_leaderboard(args.new)
    baseline, metadata = read_leaderboard(args.baseline)
    comparison = compare_tables(new, baseline, metadata, args.tolerance, new_metadata)
    print(json.dumps(comparison.to_dict(), indent=2, default=str) if args.json else comparison.format())
    return 1 if comparison.failed else 0
