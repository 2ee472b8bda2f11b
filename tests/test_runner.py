"""``ganbench run``: suite parsing, the leaderboard files and sidecar, published rows, resume after a kill,
skipped tasks, run folders and missing checkpoints, the Inception options, and the built-in suites."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

import ganbench.cli as cli
import ganbench.runner as runner
from ganbench.errors import ConfigError, DataNotFoundError
from ganbench.generators import load_source
from ganbench.leaderboard import read_leaderboard
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
def isolated(tmp_path, monkeypatch, single_thread):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANBENCH_DATA", raising=False)  # sr-x4 is skipped: no data
    task_features._MEMORY.clear()
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + ("score", "run", "compare")))
    )


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(task=task_toml(TASK)))
    return path


def test_suite_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, message in [
        ('name = "x"\ncolour = 1\n[[models]]\nname = "a"\nsource = "builtin:bicubic"', "unknown key"),
        ('[tasks.mnist]\n[[models]]\nname = "a"', "needs a name and either source or run"),
        ('[[models]]\nname = "a"\nsource = "x"\nrun = "y"', "either source or run"),
        ('runs_dir = 3\n[[models]]\nname = "a"\nsource = "x"', "runs_dir"),
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
        ".tiny.run",  # the saved evaluations, reused by the next run
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
    # SRGAN's Table 2 (Ledig et al. 2017), Set5 x4 only (the task's datasets); no Lucic et al. rows for
    # mnist: they are Inception FIDs and this task has the Inception off
    published = table[table["config"].str.startswith("published:")]
    assert published[["model", "task"]].values.tolist() == [
        ["bicubic", "sr"],
        ["SRResNet", "sr"],
        ["SRGAN", "sr"],
    ]
    assert published["config"].tolist() == ["published: Ledig et al. 2017 (SRGAN), Table 2"] * 3
    assert published["set5_psnr_y"].tolist() == [28.43, 32.05, 29.40]
    assert published["set5_ssim_y"].tolist() == [0.8211, 0.9019, 0.8472]
    assert "set14_psnr_y" not in table.columns and published["set5_psnr_y_lo"].isna().all()
    assert published["params"].isna().all()  # no latency for published rows
    assert "Y channel" in meta["published"]["Ledig et al. 2017 (SRGAN), Table 2"]
    markdown = (tmp_path / "out" / "tiny.md").read_text()
    assert (
        "| real data | held out |" in markdown
        and "## Skipped" in markdown
        and "ganbench run suite.toml" in markdown
        and "## Published results" in markdown
        and "4-pixel border removed (crop = scale)" in markdown
    )
    assert "<table" in (tmp_path / "out" / "tiny.html").read_text()
    with Image.open(tmp_path / "out" / "tiny.png") as chart:
        assert chart.size == (760, 2 * 380)  # one panel per task
    assert len(list((tmp_path / "out" / ".tiny.run").glob("*.json"))) == 5  # 2 models x 2 seeds, the gan's latency


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


def test_rerun_recomputes_only_what_changed(tmp_path, suite_file, monkeypatch):
    suite = load_suite(suite_file)
    first, _ = read_leaderboard(run_suite(suite, tmp_path / "out", progress=False)["csv"])
    original, calls = runner.evaluate_seed, []
    monkeypatch.setattr(runner, "evaluate_seed", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    again, _ = read_leaderboard(run_suite(suite, tmp_path / "out", progress=False)["csv"])
    assert calls == []  # nothing changed: every unit came from disk
    quality = [c for c in first.columns if not c.startswith("cpu_")]
    pd.testing.assert_frame_equal(again[quality], first[quality])

    retrained = load_source("builtin:untrained:gan:tiny")
    with torch.no_grad():  # the same path with other weights, as after `ganbench train` again
        next(retrained.module.parameters()).add_(0.5)
    monkeypatch.setattr(
        runner, "load_source", lambda spec, **k: retrained if "untrained:gan" in spec else load_source(spec, **k)
    )
    run_suite(suite, tmp_path / "out", progress=False)
    assert calls == [0, 1]  # the gan's two seeds again, the real-data rows reused
    assert len(list((tmp_path / "out" / ".tiny.run").glob("*.json"))) == 5  # stale gan units deleted


def test_source_fingerprint_follows_weights_and_conventions():
    a, b = load_source("builtin:untrained:gan:tiny"), load_source("builtin:untrained:gan:tiny")
    assert runner.source_fingerprint(a) == runner.source_fingerprint(b)  # same seeded weights
    b.noise = "uniform"
    assert runner.source_fingerprint(a) != runner.source_fingerprint(b)
    with torch.no_grad():
        next(a.module.parameters())[0].zero_()
    assert runner.source_fingerprint(a) != runner.source_fingerprint(load_source("builtin:untrained:gan:tiny"))


def test_run_command_writes_the_leaderboard(tmp_path, suite_file, capsys):
    assert cli.main(["run", str(suite_file), "--out", str(tmp_path / "lb"), "--quiet"]) == 0
    assert "tiny.csv" in capsys.readouterr().out
    assert cli.main(["run", str(tmp_path / "missing.toml"), "--quiet"]) == 2


SHIPPED_DCGAN = Path(runner.__file__).resolve().parents[1] / "reference_models/checkpoints/dcgan-cpu"

RUNS_SUITE = """
name = "runs"
runs_dir = "nowhere"

[latency]
enabled = false

[tasks.mnist]
{task}

[[models]]
name = "dcgan"
config = "cpu"
run = "dcgan-cpu"
train = "ganbench train dcgan --config cpu"

[[models]]
name = "gan"
config = "cpu"
run = "gan-cpu"
train = "ganbench train gan --config cpu"
"""


def test_run_folders_and_missing_checkpoints(tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(SHIPPED_DCGAN, runs / "dcgan-cpu" / "checkpoints")
    (runs / "gan-cpu" / "checkpoints").mkdir(parents=True)  # a run that has not saved a checkpoint yet
    path = tmp_path / "suite.toml"
    path.write_text(RUNS_SUITE.format(task=task_toml(TASK)))
    # runs_dir of the suite (nothing there): the first model is named with its train command
    missing = r"model 'dcgan' \(cpu\): no checkpoint .*ganbench train dcgan"
    with pytest.raises(DataNotFoundError, match=missing):
        run_suite(load_suite(path), tmp_path / "out", progress=False)
    suite = load_suite(path, runs_dir=runs)
    assert suite.models[0].source == str(runs.resolve() / "dcgan-cpu")
    with pytest.raises(DataNotFoundError, match=r"model 'gan' \(cpu\): no checkpoint"):
        run_suite(suite, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "runs.csv").exists()  # stopped before computing anything
    paths = run_suite(suite, tmp_path / "out", progress=False, skip_missing=True)
    table, meta = read_leaderboard(paths["csv"])
    assert table["model"].tolist() == ["dcgan"]
    assert [(s["model"], s["task"]) for s in meta["skipped"]] == [("gan", "mnist")]
    assert "ganbench train gan --config cpu" in meta["skipped"][0]["reason"]
    task = get_task("mnist", **TASK)
    direct = score(load_source(runs / "dcgan-cpu"), task, progress=False)
    assert table.at[0, "fid"] == pytest.approx(direct.metrics["fid"].value, rel=1e-12)
    # the command line: a clear one-line error, no traceback; --skip-missing writes the table
    args = ["run", str(path), "--runs-dir", str(runs), "--out", str(tmp_path / "cli"), "--quiet"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "DataNotFoundError: model 'gan' (cpu)" in err and "Traceback" not in err
    assert cli.main([*args, "--skip-missing"]) == 0 and (tmp_path / "cli" / "runs.csv").is_file()


def test_inception_options_suite_level_task_level_and_command_line(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(
        'inception = false\ninception_samples = 64\n'
        '[tasks.mnist]\nreference = "embedded"\n'
        '[tasks.mnist-more]\ntask = "mnist"\nreference = "embedded"\ninception_samples = 200\n'
        '[tasks.sr]\ntask = "sr-x4"\n'
        '[[models]]\nname = "a"\nsource = "builtin:bicubic"\ntasks = ["sr"]\n'
    )
    suite = load_suite(path)
    assert suite.tasks["mnist"].options == {
        "reference": "embedded",
        "inception": False,
        "inception_samples": 64,
    }
    assert suite.tasks["mnist-more"].options["inception_samples"] == 200  # the task's own value wins
    assert suite.tasks["sr"].options == {}  # sr-x4 has no Inception options
    overridden = load_suite(path, task_overrides={"inception": "auto", "inception_samples": 32})
    assert {label: entry.options.get("inception_samples") for label, entry in overridden.tasks.items()} == {
        "mnist": 32,
        "mnist-more": 32,
        "sr": None,
    }
    assert overridden.tasks["mnist"].options["inception"] == "auto"
    path.write_text(path.read_text().replace("inception_samples = 64", "inception_samples = -1"))
    with pytest.raises(ConfigError, match="inception_samples >= 0"):
        load_suite(path)


def test_zoo_suite_covers_every_reference_model(tmp_path):
    from reference_models import list_configs, list_models

    suite = load_suite("zoo-cpu", runs_dir=tmp_path)  # a built-in suite by name
    assert suite.path == runner.SUITES_DIR / "zoo-cpu.toml" and suite.published
    trained = [m for m in suite.models if m.run]
    shipped = [name for name in list_models() if "cpu" in list_configs(name)]  # not tests' toy models
    assert sorted({m.name for m in trained}) == shipped and len(shipped) == 7
    for model in trained:
        folder = Path(model.source)
        assert folder.parent == tmp_path.resolve()
        assert model.config in list_configs(model.name)
        assert model.train == f"ganbench train {model.name} --config {model.config} --out runs/{folder.name}"
        assert folder.name == f"{model.name}-{model.config}"  # what `ganbench train` writes by default
    builtins = [m.source for m in suite.models if not m.run]
    assert all(source.startswith("builtin:") for source in builtins)
    assert {"builtin:real-data", "builtin:bicubic"} <= set(builtins)
    untrained = {m.name for m in suite.models if m.source.startswith("builtin:untrained:")}
    assert untrained == set(shipped) - {"srgan"}  # srgan's generator is srresnet's network


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
