"""``ganbench run [SUITE.toml]``: evaluate models x tasks x seeds and write a leaderboard.

Writes OUT/NAME.{csv,md,html,png} and the NAME.json sidecar (NAME is the suite's name). A killed run
started again resumes where it stopped. Without SUITE, the built-in quick suite runs offline on the
embedded MNIST sample (about a minute on two CPU cores). SUITE is a TOML file or the name of a built-in
suite (ganbench/suites/NAME.toml: quick, zoo-cpu).

Examples::

    ganbench run                                   # leaderboards/quick.*
    ganbench run zoo-cpu --skip-missing            # every reference model's runs/<model>-cpu[-fashion]
    ganbench run zoo-cpu --runs-dir /data/runs --inception-samples 2000
    ganbench run suites/mnist.toml --device cuda
    ganbench run suites/sr.toml --out results/ --fresh --no-inception
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
    parser.add_argument(
        "suite", nargs="?", help="suite TOML file or built-in suite name (default: the quick suite)"
    )
    parser.add_argument("--out", default="leaderboards", help="output folder (default: leaderboards)")
    parser.add_argument(
        "--device", default="cpu", help="where generators and feature networks run (default cpu)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="recompute everything: forget the saved evaluations of earlier runs"
    )
    parser.add_argument(
        "--runs-dir", help="folder of the training runs that `run = ...` models name (default: the suite's)"
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip models whose checkpoint is missing (recorded in the leaderboard) instead of stopping",
    )
    add_inception_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)


def add_inception_options(parser: argparse.ArgumentParser) -> None:
    """``--no-inception`` and ``--inception-samples N`` (shared with ``ganbench score``)."""
    parser.add_argument(
        "--no-inception",
        action="store_true",
        help="skip the FID Inception metrics (slow on a CPU: a few images per second)",
    )
    parser.add_argument(
        "--inception-samples",
        type=int,
        metavar="N",
        help="images a side for the Inception metrics (default 500 on the CPU, 10,000 on a GPU); "
        "FID depends on N and is reported with it",
    )


def inception_options(args: argparse.Namespace) -> dict:
    """Task options from ``--no-inception`` / ``--inception-samples`` (empty when neither is given)."""
    options: dict = {}
    if args.no_inception:
        options["inception"] = False
    if args.inception_samples is not None:
        options["inception_samples"] = args.inception_samples
    return options


def run(args: argparse.Namespace) -> int:
    """Run the suite; print where the leaderboard went; returns the exit code."""
    from pathlib import Path

    from ganbench.runner import RunState, load_suite, run_suite

    suite = load_suite(args.suite, runs_dir=args.runs_dir, task_overrides=inception_options(args))
    if args.fresh:
        RunState(Path(args.out) / f".{suite.name}.run").clear()
    command = (
        "ganbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["run"] else None
    )
    paths = run_suite(
        suite,
        args.out,
        args.device,
        progress=not args.quiet,
        command=command or "ganbench run",
        skip_missing=args.skip_missing,
    )
    print(f"leaderboard {suite.name}: " + ", ".join(str(p) for p in paths.values()))
    return 0
