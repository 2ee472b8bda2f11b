"""pytest plugin: assert in a test suite that a checkpoint still meets a stored leaderboard row.

Enabled by the ``pytest11`` entry point of the installed package (or ``-p ganbench.pytest_plugin``).
The ``ganbench_baseline`` fixture is a :class:`Baseline` for the leaderboard named by (first found)
``@pytest.mark.ganbench_baseline("leaderboards/mnist.csv")`` on the test, ``--ganbench-baseline PATH``
on the command line, or ``ganbench_baseline = PATH`` in the pytest ini options::

    def test_dcgan_still_meets_its_row(ganbench_baseline):
        ganbench_baseline.check("runs/dcgan-cpu", model="dcgan", task="mnist", tolerance={"fid": "5%"})

:meth:`Baseline.check` scores the checkpoint with the row's task options and seeds (from the
leaderboard's sidecar) and fails the test, listing what got worse, by the rules of
:mod:`ganbench.compare`; :meth:`Baseline.check_result` compares a result already computed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganbench.compare import FAILING, comparability, compare_rows, metric_directions, parse_tolerances
from ganbench.generators import Generator, SampleSet, load_source
from ganbench.leaderboard import read_leaderboard, result_row
from ganbench.scoring import ScoreResult, score
from ganbench.tasks import get_task

__all__ = ["Baseline", "ganbench_baseline"]

MARKER = "ganbench_baseline"
OPTION = "--ganbench-baseline"


class Baseline:
    """The rows of a stored leaderboard, to check new results against."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.table, self.metadata = read_leaderboard(self.path)

    def row(self, model: str, task: str, config: str | None = None) -> dict:
        """The baseline row of ``(model, task[, config])``; ``LookupError`` when there is none or several."""
        rows = self.table[(self.table["model"] == model) & (self.table["task"] == task)]
        if config is not None:
            rows = rows[rows["config"] == config]
        rows = rows[~rows["config"].str.startswith("published:")]
        if len(rows) != 1:
            found = sorted(
                set(zip(self.table["model"], self.table["config"], self.table["task"], strict=True))
            )
            raise LookupError(
                f"{self.path}: {len(rows)} rows for model={model!r}, task={task!r}, config={config!r}; "
                f"rows: {found}"
            )
        return rows.iloc[0].to_dict()

    def check_result(
        self,
        result: ScoreResult,
        model: str,
        task: str,
        config: str | None = None,
        tolerance: dict | None = None,
    ) -> None:
        """Fail (``AssertionError``) when ``result`` regresses from the row (see :mod:`ganbench.compare`)."""
        baseline = self.row(model, task, config)
        recorded = next(
            (
                r
                for r in self.metadata.get("rows", [])
                if (r["model"], r["config"], r["task"]) == (model, baseline["config"], task)
            ),
            {},
        )
        reason = comparability(
            result.extractors,
            result.task_options,
            recorded.get("extractors", {}),
            self.metadata.get("tasks", {}).get(task, {}).get("options"),
        )
        if reason:
            raise AssertionError(f"{model} / {task} is not comparable with {self.path}: {reason}")
        new = result_row(model, baseline["config"], result, task)
        tolerances = parse_tolerances(tolerance)
        directions = metric_directions(self.metadata, task, self.table.columns, tolerances)
        failures = [f for f in compare_rows(new, baseline, directions, tolerances) if f.status in FAILING]
        if failures:
            raise AssertionError(
                f"{len(failures)} regression(s) against {self.path}:\n"
                + "\n".join(f.describe() for f in failures)
            )

    def check(
        self,
        source,
        model: str,
        task: str,
        config: str | None = None,
        tolerance: dict | None = None,
        device: str = "cpu",
        arch: str | None = None,
    ) -> ScoreResult:
        """Score ``source`` (a path, built-in, :class:`Generator` or :class:`SampleSet`) as the row was scored
        (same task options and seeds), check it with :meth:`check_result`, and return the result."""
        baseline = self.row(model, task, config)
        info = self.metadata["tasks"][task]
        task_obj = get_task(info["task"], **info["options"])
        if not isinstance(source, (Generator, SampleSet)):
            source = load_source(source, arch=arch, task=task_obj, device=device)
        seeds = [int(s) for s in str(baseline.get("seeds") or "0").split(",")]
        result = score(source, task_obj, seeds, device, progress=False)
        self.check_result(result, model, task, baseline["config"], tolerance)
        return result


def pytest_addoption(parser) -> None:
    parser.addoption(
        OPTION,
        default=None,
        help="leaderboard (NAME.csv with its NAME.json) for the ganbench_baseline fixture",
    )
    parser.addini("ganbench_baseline", default="", help="leaderboard for the ganbench_baseline fixture")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(path): the leaderboard the ganbench_baseline fixture loads")


@pytest.fixture
def ganbench_baseline(request) -> Baseline:
    """A :class:`Baseline` for the marker's, command line's or ini file's leaderboard (in that order)."""
    marker = request.node.get_closest_marker(MARKER)
    path = (
        (marker.args[0] if marker and marker.args else None)
        or request.config.getoption(OPTION)
        or request.config.getini("ganbench_baseline")
    )
    if not path:
        raise pytest.UsageError(
            f"ganbench_baseline: name a leaderboard with @pytest.mark.{MARKER}(PATH), {OPTION}=PATH or the "
            "ganbench_baseline ini option"
        )
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = Path(request.config.rootpath) / path
    return Baseline(path)
