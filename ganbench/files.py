"""Writing files atomically and hashing them: the one home of ganbench's file helpers.

Every file ganbench writes goes through :func:`atomic_path` (or its shorthands :func:`atomic_write_bytes`
and :func:`atomic_write_text`): the content goes to a temporary file in the target's folder, which is
moved onto the target with ``os.replace`` only once it is complete, so a reader sees the old file or the
new one, never a half-written one. Files are hashed in chunks with :func:`file_digest`
(:func:`sha256_file` for the usual sha256). :func:`is_torchscript` tells a TorchScript archive from a
``torch.save`` file without loading either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_digest",
    "sha256_file",
    "is_torchscript",
]

CHUNK_BYTES = 1 << 20  # files are read 1 MiB at a time
FILE_MODE = 0o644  # what the finished file gets (mkstemp creates the temporary one as 0o600)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; on success it replaces ``path``.

    The parent folder is created if needed. The temporary file (``.<name>.<random>.part`` in the same
    folder, so the final ``os.replace`` is atomic) exists, empty, when the block starts. If the block
    raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", progress: bool = False) -> str:
    """Hex digest of a file's bytes with the :mod:`hashlib` ``algorithm``, read 1 MiB at a time.

    ``progress`` shows a tqdm bar in bytes (for large files such as network weights).
    """
    path = Path(path)
    digest = hashlib.new(algorithm)
    with (
        open(path, "rb") as f,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"{algorithm} {path.name}",
            disable=not progress,
        ) as bar,
    ):
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike, progress: bool = False) -> str:
    """Hex sha256 of a file (see :func:`file_digest`)."""
    return file_digest(path, "sha256", progress)


def is_torchscript(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive: a zip with a compiled ``code/`` folder, which
    ``torch.save`` files (zip or legacy) do not have. Nothing is loaded."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())
