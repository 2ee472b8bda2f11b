"""The regression gate: interval rules in both directions, tolerances, missing rows and metrics, mismatched
feature extractors or task options, latency only on request, and the exit codes of ``ganbench compare``."""

import math

import pytest

import ganbench.cli as cli
from ganbench.compare import compare_tables, parse_tolerances
from ganbench.errors import ConfigError, DataNotFoundError
from ganbench.leaderboard import make_table, published_row, read_leaderboard, write_leaderboard


def row(model="dcgan", fid=(10.0, 9.0, 11.0), acc=(0.9, 0.88, 0.92), ms=5.0, config="cpu", task="mnist"):
    return {
        "model": model,
        "config": config,
        "task": task,
        "seeds": "0",
        "fid": fid[0],
        "fid_lo": fid[1],
        "fid_hi": fid[2],
        "acc": acc[0],
        "acc_lo": acc[1],
        "acc_hi": acc[2],
        "cpu_b1_ms": ms,
    }


def metadata(extractor="mnist-cnn/aaa", n=1000, rows=("dcgan",)):
    return {
        "tasks": {
            "mnist": {
                "task": "mnist",
                "options": {"n": n},
                "metrics": {"fid": {"higher_is_better": False}, "acc": {"higher_is_better": True}},
            }
        },
        "rows": [
            {"model": m, "config": "cpu", "task": "mnist", "extractors": {"domain": extractor}} for m in rows
        ],
    }


def compare(new_rows, base_rows, tolerance=None, new_meta=None):
    return compare_tables(make_table(new_rows), make_table(base_rows), metadata(), tolerance, new_meta)


def statuses(comparison):
    return {(f.model, f.metric): f.status for f in comparison.findings}


def test_identical_and_overlapping_pass():
    assert not compare([row()], [row()]).failed
    overlapping = compare([row(fid=(11.5, 10.8, 12.2), acc=(0.87, 0.85, 0.89))], [row()])
    assert not overlapping.failed and statuses(overlapping) == {
        ("dcgan", "fid"): "ok",
        ("dcgan", "acc"): "ok",
    }


def test_regressions_in_both_directions_and_improvements():
    worse = compare([row(fid=(13.0, 12.0, 14.0), acc=(0.8, 0.78, 0.82))], [row()])
    found = {f.metric: f for f in worse.failures}
    assert set(found) == {"fid", "acc"} and worse.failed
    assert found["fid"].gap == pytest.approx(12.0 - 11.0) and found["acc"].gap == pytest.approx(0.88 - 0.82)
    assert "REGRESSION" in worse.format() and "worse by 1.00" in worse.format()
    better = compare([row(fid=(5.0, 4.0, 6.0))], [row()])
    assert not better.failed and statuses(better)[("dcgan", "fid")] == "better"


def test_tolerances_absolute_and_percent():
    new = [row(fid=(13.0, 12.0, 14.0))]
    assert compare(new, [row()], ["fid=0.99"]).failed
    assert not compare(new, [row()], ["fid=1.0", "acc=0"]).failed
    assert not compare(new, [row()], ["fid=10%"]).failed  # 10% of 10.0 = 1.0
    assert compare(new, [row()], {"fid": "9%"}).failed
    assert parse_tolerances(["fid=0.5", "acc=2%"]) == {"fid": "0.5", "acc": "2%"}
    for bad in (["fid"], ["fid=-1"], ["fid=abc"], ["=1"]):
        with pytest.raises(ConfigError):
            parse_tolerances(bad)
    with pytest.raises(ConfigError, match="no such column"):
        compare(new, [row()], ["fdi=1"])


def test_values_without_intervals_use_the_value():
    nan = (math.nan, math.nan)
    assert compare([row(fid=(10.5, *nan))], [row(fid=(10.0, *nan))]).failed
    assert not compare([row(fid=(10.0, *nan))], [row(fid=(10.0, *nan))]).failed


def test_missing_rows_and_metrics_fail_new_rows_do_not():
    missing_row = compare([row(model="gan")], [row(), row(model="gan")])
    assert statuses(missing_row)[("dcgan", "(row)")] == "missing" and missing_row.failed
    missing_metric = compare([row(acc=(math.nan, math.nan, math.nan))], [row()])
    assert statuses(missing_metric)[("dcgan", "acc")] == "missing"
    extra = compare([row(), row(model="gan")], [row()])
    assert not extra.failed and extra.new_rows == [("gan", "cpu", "mnist")]
    published = published_row("mnist", {"model": "paper", "source": "X et al.", "metrics": {"fid": 1.0}})
    assert not compare([row()], [row(), published]).failed  # published rows are not gated


def test_latency_only_when_a_tolerance_names_it():
    slower = [row(ms=9.0)]
    assert not compare(slower, [row()]).failed
    assert compare(slower, [row()], ["cpu_b1_ms=50%"]).failed
    assert not compare(slower, [row()], ["cpu_b1_ms=100%"]).failed


def test_other_extractor_or_options_are_not_comparable():
    base = make_table([row()])
    for new_meta, reason in [
        (metadata(extractor="mnist-cnn/bbb"), "feature extractors differ"),
        (metadata(n=500), "task options differ"),
    ]:
        comparison = compare_tables(make_table([row()]), base, metadata(), None, new_meta)
        assert comparison.failed and reason in comparison.format()


def write(tmp_path, name, rows, meta):
    return write_leaderboard(make_table(rows), {**meta, "command": "test"}, tmp_path, name)["csv"]


def test_compare_command_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + ("score", "run", "compare")))
    )
    base = write(tmp_path, "base", [row()], metadata())
    same = write(tmp_path, "same", [row(fid=(10.4, 9.5, 11.3))], metadata())
    worse = write(tmp_path, "worse", [row(fid=(14.0, 13.0, 15.0))], metadata())
    assert cli.main(["compare", str(same), str(base)]) == 0
    assert cli.main(["compare", str(worse), str(base)]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert cli.main(["compare", str(worse), str(base), "--tolerance", "fid=2.5"]) == 0
    assert (
        cli.main(["compare", str(worse), str(tmp_path / "base.json"), "--json"]) == 1
    )  # any of the files names it
    assert cli.main(["compare", str(worse), str(tmp_path / "nothing.csv")]) == 2
    table, meta = read_leaderboard(tmp_path / "base")
    assert table["fid"].item() == 10.0 and meta["name"] == "base"
    (tmp_path / "base.json").unlink()
    with pytest.raises(DataNotFoundError, match="sidecar"):
        read_leaderboard(base)
