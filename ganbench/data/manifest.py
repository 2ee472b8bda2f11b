"""Verify a user's copy of a CycleGAN data set (apple2orange, horse2zebra) against a sha256 manifest.

The official images cannot be shipped; ``ROOT/cyclegan/apple2orange_horse2zebra_sha256_manifest.txt``
lists, one file a line, ``<sha256 hex> <size in bytes> <path>`` with paths such as
``data/apple2orange/trainA/n07740461_1009.jpg`` (the last three components are data set, subset and
file name). :func:`verify_dataset` compares a folder holding ``trainA/ trainB/ testA/ testB/`` with it
and reports missing files, files whose size or sha256 differ, and files the manifest does not list.
"""

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ganbench.errors import CorruptFileError, DataNotFoundError
from ganbench.files import sha256_file
from ganbench.settings import data_root

__all__ = [
    "MANIFEST_FILE",
    "DATASETS",
    "SUBSETS",
    "ManifestEntry",
    "VerifyReport",
    "read_manifest",
    "verify_dataset",
]

MANIFEST_FILE = "cyclegan/apple2orange_horse2zebra_sha256_manifest.txt"
DATASETS = ("apple2orange", "horse2zebra")
SUBSETS = ("trainA", "trainB", "testA", "testB")


@dataclass(frozen=True)
class ManifestEntry:
    """One listed file: its path inside the data set folder (``"trainA/x.jpg"``), size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_dataset`; ``ok`` when nothing is missing, different or extra."""

    dataset: str
    folder: str
    manifest: str
    listed: int
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.extra)

    def to_dict(self) -> dict:
        """JSON-ready dictionary, ``ok`` included."""
        return {**asdict(self), "ok": self.ok}


def _parse_line(line: str, number: int, path: Path) -> tuple[str, ManifestEntry] | None:
    """``(data set, entry)`` of one manifest line, None for blank/comment lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    fields = line.split(maxsplit=2)
    digest = fields[0].lower() if fields else ""
    parts = PurePosixPath(fields[2]).parts if len(fields) == 3 else ()
    if (
        len(fields) != 3
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
        or not fields[1].isdigit()
        or len(parts) < 3
    ):
        raise CorruptFileError(
            f"{str(path)!r} line {number}: expected '<sha256> <size> <dataset>/<subset>/<file>', "
            f"got {line[:120]!r}"
        )
    return parts[-3], ManifestEntry(f"{parts[-2]}/{parts[-1]}", int(fields[1]), digest)


def read_manifest(
    manifest: str | os.PathLike | None = None, root: str | os.PathLike | None = None
) -> dict[str, dict[str, ManifestEntry]]:
    """Parse a manifest into ``{data set: {"subset/file": entry}}``.

    ``manifest`` defaults to ``ROOT/cyclegan/apple2orange_horse2zebra_sha256_manifest.txt`` with
    ``ROOT`` = ``root`` or ``$GANBENCH_DATA``. Raises :class:`DataNotFoundError` when it is missing and
    :class:`CorruptFileError` (with the line number) for a malformed line.
    """
    path = Path(manifest) if manifest is not None else data_root(root) / MANIFEST_FILE
    if not path.is_file():
        raise DataNotFoundError(
            f"manifest {str(path)!r} does not exist (give --manifest FILE or set GANBENCH_DATA)"
        )
    datasets: dict[str, dict[str, ManifestEntry]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parsed = _parse_line(line, number, path)
            if parsed is not None:
                dataset, entry = parsed
                datasets.setdefault(dataset, {})[entry.path] = entry
    return datasets


def _dataset_folder(folder: Path, name: str) -> Path:
    """``folder`` itself, or ``folder/name`` when only that one holds the subset folders."""
    if not folder.is_dir():
        raise DataNotFoundError(f"data set folder {str(folder)!r} does not exist")
    has_subsets = any((folder / s).is_dir() for s in SUBSETS)
    if not has_subsets and any((folder / name / s).is_dir() for s in SUBSETS):
        return folder / name
    return folder


def _files_on_disk(folder: Path) -> set[str]:
    """``"subset/file"`` of every non-hidden file in the subset folders."""
    found = set()
    for subset in SUBSETS:
        if (folder / subset).is_dir():
            found.update(
                f"{subset}/{p.name}"
                for p in (folder / subset).iterdir()
                if p.is_file() and not p.name.startswith(".")
            )
    return found


def verify_dataset(
    name: str,
    folder: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> VerifyReport:
    """Check the copy of data set ``name`` in ``folder`` against the manifest.

    ``folder`` holds ``trainA/``, ``trainB/``, ``testA/``, ``testB/``, or a folder ``name`` that holds
    them. Every listed file is checked for existence, size and sha256;
    files in the subset folders the manifest does not list (hidden files aside) are reported as extra.
    """
    manifest_path = Path(manifest) if manifest is not None else data_root(root) / MANIFEST_FILE
    datasets = read_manifest(manifest_path)
    if name not in datasets:
        raise DataNotFoundError(
            f"manifest {str(manifest_path)!r} lists no files of {name!r}; "
            f"it lists {', '.join(sorted(datasets))}"
        )
    entries = datasets[name]
    base = _dataset_folder(Path(folder), name)
    report = VerifyReport(name, str(base), str(manifest_path), listed=len(entries))
    on_disk = _files_on_disk(base)
    for rel in tqdm(
        sorted(entries), desc=f"verifying {name}", unit="file", disable=not progress, leave=False
    ):
        entry = entries[rel]
        if rel not in on_disk:
            report.missing.append(rel)
            continue
        size = (base / rel).stat().st_size
        if size != entry.size:
            report.mismatched.append({"path": rel, "reason": f"size {size} bytes, expected {entry.size}"})
        elif sha256_file(base / rel) != entry.sha256:
            report.mismatched.append({"path": rel, "reason": "sha256 differs"})
        else:
            report.verified += 1
    report.extra = sorted(on_disk - entries.keys())
    return report
