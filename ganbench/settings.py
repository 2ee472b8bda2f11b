"""Where ganbench finds data and keeps its cache: the one place that reads environment settings."""

import os
from pathlib import Path

from ganbench.errors import DataNotFoundError

DATA_ENV = "GANBENCH_DATA"
CACHE_ENV = "GANBENCH_CACHE"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``root`` if given, else ``$GANBENCH_DATA``.

    Raises :class:`DataNotFoundError` when neither is set or the folder does not exist.
    """
    chosen = root if root is not None else os.environ.get(DATA_ENV)
    if chosen is None:
        raise DataNotFoundError(
            f"no data root: pass root=... or set {DATA_ENV} (e.g. {DATA_ENV}=../shared/data)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"data root {str(path)!r} is not a directory (from {DATA_ENV} or root=)")
    return path


def cache_dir() -> Path:
    """Return ganbench's cache folder (``$GANBENCH_CACHE`` or ``~/.cache/ganbench``), creating it."""
    path = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "ganbench")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
