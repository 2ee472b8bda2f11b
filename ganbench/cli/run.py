"""``ganbench run [SUITE.toml]``: evaluate models x tasks x seeds and write a leaderboard.

Writes OUT/NAME.{csv,md,html,png} and the NAME.json sidecar (NAME is the suite's name). A killed run
started again resumes where it stopped. Without SUITE, the built-in quick suite runs offline on the
embedded MNIST sample (about a minute on two CPU cores).

Examples::

    ganbench run                                   # leaderboards/quick.*
    ganbench run suites/mnist.toml --device cuda
    ganbench run suites/sr.toml --out results/ --fresh
"""

import argparse
import shlex
import sys


def register(subparsers) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run a benchmark suite and write a leaderboard (no argument: the quick offline suite)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suite", nargs="?", help="suite TOML file (default: the built-in quick suite)")
    parser.add_argument("--out", default="leaderboards", help="output folder (default: leaderboards)")
    parser.add_argument(
        "--device", default="cpu", help="where generators and feature networks run (default cpu)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the saved progress of an interrupted run"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the suite; print where the leaderboard went; returns the exit code."""
    from pathlib import Path

    from ganbench.runner import RunState, load_suite, run_suite

    suite = load_suite(args.suite)
    if args.fresh:
        RunState(Path(args.out) / f".{suite.name}.run").clear()
    command = (
        "ganbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["run"] else None
    )
    paths = run_suite(
        suite, args.out, args.device, progress=not args.quiet, command=command or "ganbench run"
    )
    print(f"leaderboard {suite.name}: " + ", ".join(str(p) for p in paths.values()))
    return 0
