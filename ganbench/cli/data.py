"""``ganbench data``: check user-supplied data sets.

Examples::

    ganbench data verify apple2orange ~/datasets/apple2orange
    ganbench data verify horse2zebra ./horse2zebra --json
    ganbench data verify apple2orange ./a2o --manifest my_manifest.txt

Exit status: 0 when the copy matches the manifest, 1 when files are missing, different or extra,
2 on errors (no manifest, folder not found, malformed manifest).
"""

import argparse

from ganbench.cli import print_result
from ganbench.data.manifest import DATASETS, MANIFEST_FILE, VerifyReport, verify_dataset

# Longest file list printed in the text report (the JSON report lists every file).
MAX_LISTED = 20


def register(subparsers) -> None:
    """Add the ``data`` sub-command."""
    parser = subparsers.add_parser(
        "data",
        help="verify user-supplied data sets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a CycleGAN data set folder against its sha256 manifest",
        description="Check every file listed for NAME (existence, size, sha256) and report files in "
        "trainA/trainB/testA/testB that the manifest does not list.",
    )
    verify.add_argument("name", help=f"data set name in the manifest ({', '.join(DATASETS)})")
    verify.add_argument("path", help="folder holding trainA/ trainB/ testA/ testB/ (or NAME/ with them)")
    verify.add_argument(
        "--manifest",
        metavar="FILE",
        help=f"manifest to check against (default: $GANBENCH_DATA/{MANIFEST_FILE})",
    )
    verify.add_argument("--data-root", default=None, help="data root (default: $GANBENCH_DATA)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(func=run)


def _listing(title: str, items: list[str]) -> list[str]:
    """Text lines for one list of files, at most :data:`MAX_LISTED` of them."""
    if not items:
        return []
    lines = [f"{title} ({len(items)}):"] + [f"  {item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"  ... and {len(items) - MAX_LISTED} more (--json lists all)")
    return lines


def format_report(report: VerifyReport) -> str:
    """Human-readable summary of a verification."""
    lines = [
        f"{report.dataset} in {report.folder}: {report.verified} of {report.listed} listed files verified "
        f"(manifest {report.manifest})"
    ]
    lines += _listing("missing", report.missing)
    lines += _listing("different", [f"{m['path']}: {m['reason']}" for m in report.mismatched])
    lines += _listing("not in the manifest", report.extra)
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Verify the data set and print the report; exit code 0 if it matches, 1 if not."""
    report = verify_dataset(
        args.name, args.path, args.manifest, root=args.data_root, progress=not (args.quiet or args.json)
    )
    print_result(report.to_dict(), args.json, format_report(report))
    return 0 if report.ok else 1
