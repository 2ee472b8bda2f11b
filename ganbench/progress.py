"""Progress bars that a caller can silence for everything it calls: ``with quiet(): ...``.

Data loaders deep inside a call (reading train291, blurring BSD100) cannot be handed a ``progress``
flag by every caller; they draw their bar with :func:`progress_bar`, which stays hidden inside a
:func:`quiet` block (``ganbench train --quiet`` builds its data set in one) and, as tqdm's
``disable=None``, when the output is not a terminal.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

__all__ = ["quiet", "progress_bar"]

_quiet: ContextVar[bool] = ContextVar("ganbench_quiet", default=False)


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Hide every :func:`progress_bar` drawn inside the block (``enabled=False``: change nothing)."""
    token = _quiet.set(_quiet.get() or enabled)
    try:
        yield
    finally:
        _quiet.reset(token)


def progress_bar(iterable: Iterable, **kwargs) -> tqdm:
    """``tqdm(iterable, leave=False, **kwargs)``, hidden inside :func:`quiet` or off a terminal."""
    kwargs.setdefault("leave", False)
    return tqdm(iterable, disable=True if _quiet.get() else None, **kwargs)
