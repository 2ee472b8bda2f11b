"""The pytest plugin: a user's test suite checks checkpoints against a stored leaderboard row."""

import pytest

from ganbench.generators import load_source
from ganbench.pytest_plugin import Baseline
from ganbench.runner import load_suite, run_suite
from ganbench.scoring import score
from ganbench.tasks import features as task_features
from ganbench.tasks import get_task

pytest_plugins = ["pytester"]

SUITE = """
name = "base"
seeds = [0]
[latency]
enabled = false
[tasks.mnist]
n = 100
reference = "embedded"
inception = false
kid_subsets = 2
kid_subset_size = 50
spread_subsets = 2
[[models]]
name = "real data"
config = "held out"
source = "builtin:real-data"
"""

USER_TESTS = """
import pytest

def test_real_data_meets_its_row(ganbench_baseline):
    result = ganbench_baseline.check("builtin:real-data", model="real data", task="mnist")
    assert result.metrics["fid"].value == pytest.approx(ganbench_baseline.row("real data", "mnist")["fid"])

def test_untrained_generator_regresses(ganbench_baseline):
    ganbench_baseline.check("builtin:untrained:gan:tiny", model="real data", task="mnist")

def test_unknown_row(ganbench_baseline):
    with pytest.raises(LookupError, match="0 rows"):
        ganbench_baseline.row("nobody", "mnist")

@pytest.mark.ganbench_baseline("elsewhere/other.csv")
def test_marker_names_another_leaderboard(ganbench_baseline):
    assert ganbench_baseline.path.name == "other.csv"
"""


@pytest.fixture
def baseline(pytester, monkeypatch, single_thread):
    """A leaderboard written by the runner in the pytester folder (and a copy under elsewhere/other)."""
    monkeypatch.setenv("GANBENCH_CACHE", str(pytester.path / "cache"))
    # The inner runs load the plugin with -p only, whether or not the installed entry point exists.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    task_features._MEMORY.clear()
    suite = pytester.path / "suite.toml"
    suite.write_text(SUITE)
    run_suite(load_suite(suite), pytester.path / "lb", progress=False)
    other = pytester.path / "elsewhere"
    other.mkdir()
    for suffix in (".csv", ".json"):
        (other / f"other{suffix}").write_bytes((pytester.path / "lb" / f"base{suffix}").read_bytes())
    return pytester.path / "lb" / "base.csv"


def test_plugin_passes_a_match_and_fails_a_regression(pytester, baseline):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "ganbench.pytest_plugin", f"--ganbench-baseline={baseline}", "-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_untrained_generator_regresses*",
            "*regression(s) against*",
            "*real data (held out) / mnist / fid*",
        ]
    )


def test_ini_option_and_missing_configuration(pytester, baseline):
    pytester.makeini(f"[pytest]\nganbench_baseline = {baseline.relative_to(pytester.path)}\n")
    pytester.makepyfile(
        test_user="""
def test_row(ganbench_baseline):
    assert ganbench_baseline.row("real data", "mnist")["n_fake"] == 100
"""
    )
    pytester.runpytest("-p", "ganbench.pytest_plugin", "-q").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("-p", "ganbench.pytest_plugin", "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*name a leaderboard*"])


def test_check_refuses_rows_of_other_task_options(baseline):
    board = Baseline(baseline)
    options = {**board.metadata["tasks"]["mnist"]["options"], "n": 200}
    task = get_task("mnist", **options)
    result = score(load_source("builtin:real-data", task=task), task, progress=False)
    with pytest.raises(AssertionError, match="task options differ: n 100 -> 200"):
        board.check_result(result, "real data", "mnist")
