"""``ganbench run``: suite parsing, the leaderboard files and sidecar, resume after a kill, atomic writes,
skipped tasks, and the built-in quick suite."""

import json
import os

import pandas as pd
import pytest
import torch
from PIL import Image

import ganbench.cli as cli
import ganbench.runner as runner
from ganbench.errors import ConfigError
from ganbench.generators import load_source
from ganbench.leaderboard import atomic_write, read_leaderboard
from ganbench.runner import load_suite, run_suite
from ganbench.scoring import score
from ganbench.tasks import features as task_features
from ganbench.tasks import get_task

TASK = {
    "n": 100,
    "reference": "embedded",
    "inception": False,
    "kid_subsets": 2,
    "kid_subset_size": 50,
    "spread_subsets": 2,
    "batch_size": 50,
}

SUITE = """
name = "tiny"
seeds = [0, 1]
published = true

[latency]
batch_sizes = [1, 2]
warmup = 0
repeats = 2
min_time_s = 0.0

[tasks.mnist]
{task}

[tasks.sr]
task = "sr-x4"
datasets = ["Set5"]

[[models]]
name = "real data"
config = "held out"
source = "builtin:real-data"
tasks = ["mnist"]

[[models]]
name = "gan"
config = "tiny, step 0"
source = "builtin:untrained:gan:tiny"
tasks = ["mnist"]

[[models]]
name = "bicubic"
source = "builtin:bicubic"
tasks = ["sr"]
"""


def task_toml(options: dict) -> str:
    return "\n".join(
        f"{k} = {json.dumps(v)}" if isinstance(v, str) else f"{k} = {str(v).lower()}"
        for k, v in options.items()
    )


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANBENCH_DATA", raising=False)  # sr-x4 is skipped: no data
    task_features._MEMORY.clear()
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + ("score", "run", "compare")))
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(task=task_toml(TASK)))
    return path


def test_suite_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, message in [
        ('name = "x"\ncolour = 1\n[[models]]\nname = "a"\nsource = "builtin:bicubic"', "unknown key"),
        ('[tasks.mnist]\n[[models]]\nname = "a"', "needs name and source"),
        ('[tasks.mnist]\n[[models]]\nname = "a"\nsource = "builtin:bicubic"\ntasks = ["sr"]', "without a"),
        ('[tasks.mnist]\nsize = 3\n[[models]]\nname = "a"\nsource = "x"', "unknown option 'size'"),
        ('seeds = []\n[[models]]\nname = "a"\nsource = "x"', "seeds"),
        ('name = "../up"\n[[models]]\nname = "a"\nsource = "x"', "file-name-safe"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_suite(bad)
    suite = load_suite(runner.QUICK_SUITE)
    assert suite.name == "quick" and {"mnist", "mnist-cond", "sr-x4"} <= set(suite.tasks)


def test_run_writes_leaderboard_files_and_sidecar(tmp_path, suite_file):
    paths = run_suite(
        load_suite(suite_file), tmp_path / "out", progress=False, command="ganbench run suite.toml"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "tiny.csv",
        "tiny.html",
        "tiny.json",
        "tiny.md",
        "tiny.png",
    ]
    table, meta = read_leaderboard(paths["csv"])
    measured = table[~table["config"].str.startswith("published:")]
    assert measured[["model", "task"]].values.tolist() == [["real data", "mnist"], ["gan", "mnist"]]
    # the same numbers as scoring directly (two seeds: each draws 100 of the 1,000 held-out images)
    task = get_task("mnist", **TASK)
    direct = score(load_source("builtin:real-data", task=task), task, seeds=[0, 1], progress=False)
    row = measured.iloc[0]
    assert row["fid"] == pytest.approx(direct.metrics["fid"].value, rel=1e-12)
    assert row["fid_lo"] == pytest.approx(direct.metrics["fid"].low, rel=1e-12) and row["seeds"] == "0,1"
    gan = measured.iloc[1]
    assert (
        gan["params"] > 0
        and gan["cpu_b1_ms"] > 0
        and gan["cpu_b2_img_s"] > 0
        and gan["output_shape"] == "1x1x28x28"
    )
    assert (
        meta["command"] == "ganbench run suite.toml"
        and meta["ganbench"]
        and meta["environment"]["torch"] == torch.__version__
    )
    assert meta["tasks"]["mnist"]["metrics"]["fid"]["higher_is_better"] is False
    assert meta["rows"][0]["counts"] == {"n_real": 1000, "n_fake": 100} and meta["extractors"][0].startswith(
        "mnist-cnn/"
    )
    assert [s["model"] for s in meta["skipped"]] == ["bicubic"] and "GANBENCH_DATA" in meta["skipped"][0][
        "reason"
    ]
    published = table[table["config"].str.startswith("published:")]
    assert published.loc[published["model"] == "SRResNet", "set5_psnr_y"].item() == 32.05
    markdown = (tmp_path / "out" / "tiny.md").read_text()
    assert (
        "| real data | held out |" in markdown
        and "## Skipped" in markdown
        and "ganbench run suite.toml" in markdown
    )
    assert "<table" in (tmp_path / "out" / "tiny.html").read_text()
    with Image.open(tmp_path / "out" / "tiny.png") as chart:
        assert chart.size == (760, 2 * 380)  # one panel per task
    assert not (tmp_path / "out" / ".tiny.run").exists()  # progress removed once written


def test_killed_run_resumes_where_it_stopped(tmp_path, suite_file, monkeypatch):
    suite = load_suite(suite_file)
    original = runner.evaluate_seed
    calls = []

    def killed_on_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed during gan / seed 0
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate_seed", killed_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, tmp_path / "out", progress=False)
    saved = list((tmp_path / "out" / ".tiny.run").glob("*.json"))
    assert len(saved) == 2 and not (tmp_path / "out" / "tiny.csv").exists()
    calls.clear()
    monkeypatch.setattr(runner, "evaluate_seed", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    resumed, _ = read_leaderboard(run_suite(suite, tmp_path / "out", progress=False)["csv"])
    assert calls == [0, 1]  # only gan's two seeds; the real-data seeds came from disk
    task_features._MEMORY.clear()
    fresh, _ = read_leaderboard(run_suite(suite, tmp_path / "fresh", progress=False)["csv"])
    quality = [c for c in fresh.columns if not c.startswith("cpu_")]
    pd.testing.assert_frame_equal(resumed[quality], fresh[quality])


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = atomic_write(tmp_path / "board.csv", "old\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["board.csv"]  # no temporary file left


def test_run_command_writes_the_leaderboard(tmp_path, suite_file, capsys):
    assert cli.main(["run", str(suite_file), "--out", str(tmp_path / "lb"), "--quiet"]) == 0
    assert "tiny.csv" in capsys.readouterr().out
    assert cli.main(["run", str(tmp_path / "missing.toml"), "--quiet"]) == 2


@pytest.mark.slow
def test_builtin_quick_suite_runs_offline(tmp_path):
    paths = run_suite(load_suite(), tmp_path, progress=False)
    table, meta = read_leaderboard(paths["csv"])
    real = table[(table["model"] == "real data") & (table["task"] == "mnist")].iloc[0]
    untrained = table[(table["model"] == "dcgan") & (table["task"] == "mnist")].iloc[0]
    assert (
        real["fid"] < untrained["fid_lo"]
    )  # the real-data ceiling beats an untrained generator, intervals apart
    assert {s["task"] for s in meta["skipped"]} == {"sr-x4"}
