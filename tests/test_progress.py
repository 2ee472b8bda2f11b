"""ganbench.progress: bars drawn deep inside a call are hidden by the caller's quiet() block."""

import io

from ganbench.progress import progress_bar, quiet


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, so tqdm's ``disable=None`` draws on it."""

    def isatty(self) -> bool:
        return True


def drawn(**kwargs) -> str:
    stream = FakeTerminal()
    for _ in progress_bar(range(3), file=stream, desc="loading", **kwargs):
        pass
    return stream.getvalue()


def test_bar_is_drawn_on_a_terminal():
    assert "loading" in drawn()


def test_quiet_hides_bars_and_restores_on_exit():
    with quiet():
        assert drawn() == ""
        with quiet(False):  # an inner caller asking for bars does not undo the outer quiet
            assert drawn() == ""
    assert "loading" in drawn()


def test_quiet_false_changes_nothing():
    with quiet(False):
        assert "loading" in drawn()


def test_bar_hidden_off_a_terminal():
    stream = io.StringIO()
    for _ in progress_bar(range(3), file=stream, desc="loading"):
        pass
    assert stream.getvalue() == ""
