"""The ``ganbench`` command line: one module per sub-command, each with a ``register`` function."""

import argparse
import importlib
import json
import sys

from ganbench import __version__
from ganbench.errors import GanbenchError

# Sub-command modules of ganbench.cli; each defines register(subparsers) which adds its parser and sets
# ``func`` (called with the parsed arguments, returns an exit code).
COMMAND_MODULES = ("fid", "sr_baseline", "weights", "classifier", "data", "train", "sample", "score", "run", "compare")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="ganbench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"ganbench.cli.{module_name}").register(subparsers)
    return parser


def print_result(result: dict, as_json: bool, text: str) -> None:
    """Print ``result`` as JSON when asked, else the human-readable ``text``."""
    print(json.dumps(result, indent=2, sort_keys=True) if as_json else text)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; ganbench errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GanbenchError as exc:
        print(f"ganbench {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
