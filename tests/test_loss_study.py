"""The loss study (reference_models.loss_study): recipes and budgets, the table's numbers (recomputed
with numpy/scipy), resume, divergence, outputs. Tiny dcgan config, 2 losses x 2 seeds, a few updates."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.special
import torch
from PIL import Image

from ganbench.checks import to_uint8
from ganbench.data.sample import load_embedded_sample
from ganbench.errors import CheckpointError, ConfigError
from ganbench.features import get_feature_extractor
from reference_models import loss_study
from reference_models.config import load_config
from reference_models.engine import Trainer, load_trained

pytestmark = pytest.mark.usefixtures("single_thread")

LOSSES = ["nonsaturating", "wgan-gp"]  # the base-config recipe and a recipe file (5 D + 1 G a step)
SEEDS = [0, 1]
UPDATES = 6  # nonsaturating (1 D + 2 G): 2 steps; wgan-gp (5 D + 1 G): 1 step
SAMPLES = 150
EMBEDDED_REFERENCE = 1000  # the mnist task's embedded reference: the sample's first 1,000 digits


class TrainerCounter:
    """Stands in for Trainer in loss_study: records (run folder, resume) of every construction."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, out_dir, **kwargs):
        self.calls.append((str(out_dir), kwargs.get("resume", False)))
        return Trainer(config, out_dir, **kwargs)


def study_argv(tmp) -> list[str]:
    return [
        "--config", "tiny", "--reference", "embedded", "--samples", str(SAMPLES), "--updates", str(UPDATES),
        "--losses", *LOSSES, "--seeds", *map(str, SEEDS), "--runs-dir", str(tmp / "runs"),
        "--out", str(tmp / "out" / "dcgan-losses"), "--quiet",
    ]  # fmt: skip


def run_main(monkeypatch, argv) -> tuple[TrainerCounter, list]:
    """``loss_study.main(argv)`` counting Trainer constructions and generator scorings."""
    counter, scored = TrainerCounter(), []
    real_load_source = loss_study.load_source

    def counting_load_source(path, **kwargs):
        scored.append(path)
        return real_load_source(path, **kwargs)

    monkeypatch.setattr(loss_study, "Trainer", counter)
    monkeypatch.setattr(loss_study, "load_source", counting_load_source)
    assert loss_study.main(argv) == 0
    return counter, scored


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study run once, with nonsaturating seed 1 stopped half-way beforehand (a killed study)."""
    tmp = tmp_path_factory.mktemp("study")
    config = loss_study.study_config("nonsaturating", "tiny", UPDATES, 1)
    Trainer(config, run_folder(tmp, "nonsaturating", 1), progress=False).train(stop_at=1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        counter, scored = run_main(monkeypatch, study_argv(tmp))
    return tmp, counter, scored


def run_folder(tmp, loss: str, seed: int):
    return tmp / "runs" / f"tiny-u{UPDATES}" / loss / f"seed{seed}"


def read_outputs(tmp) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    stem = tmp / "out" / "dcgan-losses"
    md = stem.with_name("dcgan-losses.md").read_text(encoding="utf-8")
    summary = pd.read_csv(stem.with_name("dcgan-losses.csv"))
    return summary, pd.read_csv(stem.with_name("dcgan-losses-runs.csv")), md


# --- recipes and budgets (no training)


@pytest.mark.parametrize("loss", loss_study.LOSS_NAMES)
def test_each_loss_gets_its_recipe_over_the_cpu_config(loss):
    config = loss_study.study_config(loss, "cpu", 1800, seed=2)
    cpu = load_config("dcgan", "cpu")
    if loss in loss_study.RECIPE_CONFIGS:  # 5 D + 1 G a step: 300 steps; exactly the recipe file's config
        expected = load_config("dcgan", loss_study.RECIPE_CONFIGS[loss], ["train.steps=300", "train.seed=2"])
    else:  # 1 D + 2 G a step: 600 steps; the cpu config with another loss
        expected = load_config("dcgan", "cpu", [f"loss.name={loss}", "train.steps=600", "train.seed=2"])
    assert config == expected
    assert config["loss"]["name"] == loss
    for table, key in (("model", "width"), ("data", "batch_size"), ("tricks", "ema"), ("tricks", "init")):
        assert config[table][key] == cpu[table][key]
    assert config["train"]["steps"] * loss_study.updates_per_step(config) == 1800


def test_recipe_changes_name_what_the_wgan_recipe_changes():
    changes = loss_study.recipe_changes("wgan", "cpu")
    cpu = load_config("dcgan", "cpu")
    assert f"optim.D.name: {cpu['optim']['D']['name']} -> rmsprop" in changes
    assert "optim.D.lr: " + str(cpu["optim"]["D"]["lr"]) + " -> 5e-05" in changes
    assert f"train.n_critic: {cpu['train']['n_critic']} -> 5" in changes
    assert not [c for c in changes if c.startswith(("model.", "data.", "tricks.", "train.steps"))]
    assert loss_study.recipe_changes("hinge", "cpu") == [f"loss.name: {cpu['loss']['name']} -> hinge"]


def test_budget_rounds_down_to_whole_steps_and_refuses_less_than_one():
    assert loss_study.study_config("wgan", "tiny", 17)["train"]["steps"] == 2  # 17 // 6
    with pytest.raises(ConfigError, match="less than one wgan-gp step"):
        loss_study.study_config("wgan-gp", "tiny", 5)


@pytest.mark.parametrize(
    "argv, message",
    [(["--losses", "softplus"], "losses must be some of"), (["--seeds", "0", "0"], "once each"),
     (["--samples", "1"], "samples >= 2"), (["--threads", "0"], "threads must be >= 1")],
)  # fmt: skip
def test_bad_choices_exit_2_with_a_clear_message(tmp_path, capsys, argv, message):
    assert loss_study.main([*argv, "--runs-dir", str(tmp_path), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing trained or written


# --- the study


def test_study_trains_each_run_once_and_resumes_the_stopped_one(study):
    tmp, counter, scored = study
    # (folder, resume): one Trainer a run, and only the stopped run resumes
    runs = [(loss, seed) for loss in LOSSES for seed in SEEDS]
    expected = [(str(run_folder(tmp, *run)), run == ("nonsaturating", 1)) for run in runs]
    assert sorted(counter.calls) == sorted(expected)
    assert len(scored) == 4
    record = json.loads((run_folder(tmp, "nonsaturating", 1) / "loss-study.json").read_text())
    assert record["train"]["from_step"] == 1 and record["train"]["diverged"] is None


def test_tables_hold_the_runs_and_their_mean_and_std(study):
    tmp, _, _ = study
    summary, runs, _ = read_outputs(tmp)
    assert list(runs["loss"]) == ["nonsaturating"] * 2 + ["wgan-gp"] * 2
    assert list(runs["seed"]) == SEEDS * 2
    assert list(runs["steps"]) == [2, 2, 1, 1]
    assert list(runs["updates"]) == [UPDATES] * 4
    assert (runs["status"] == "ok").all() and (runs["train_s"] > 0).all()
    assert np.allclose(runs["s_per_update"], runs["train_s"] / runs["updates"], rtol=1e-12)
    assert list(summary["loss"]) == [*LOSSES, "real-data"]
    for loss in LOSSES:
        row = summary[summary["loss"] == loss].iloc[0]
        assert (row["seeds"], row["diverged"], row["updates"]) == (2, 0, UPDATES)
        for metric in ("fid", "is"):
            values = runs.loc[runs["loss"] == loss, metric].to_numpy()
            assert row[f"{metric}_mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        train_s = runs.loc[runs["loss"] == loss, "train_s"].to_numpy()
        assert row["train_s_mean"] == pytest.approx(np.mean(train_s), rel=1e-12)
    real = summary[summary["loss"] == "real-data"].iloc[0]
    assert math.isnan(real["fid_std"])
    assert real["fid_mean"] < runs["fid"].min() and real["is_mean"] > runs["is"].max()


def test_scores_match_fid_and_is_recomputed_with_scipy(study):
    """The table's FID and IS of one run equal a scipy/numpy recomputation from its generator's samples
    (latents of seed 0, U(-1, 1)) and the MNIST classifier, against the embedded reference."""
    tmp, _, _ = study
    _, runs, _ = read_outputs(tmp)
    row = runs[(runs["loss"] == "wgan-gp") & (runs["seed"] == 1)].iloc[0]
    model, record = load_trained(run_folder(tmp, "wgan-gp", 1))
    assert record["step"] == 1
    z = torch.rand(SAMPLES, model.latent_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        fake = to_uint8(model.generate(z).clamp(-1, 1), (-1, 1))
    classifier = get_feature_extractor("mnist")
    real_images = load_embedded_sample()[0][:EMBEDDED_REFERENCE, None]
    with torch.no_grad():
        real_f, fake_f = (classifier(x).double().numpy() for x in (real_images, fake))
        logits = classifier.logits(fake).double()
    mu1, mu2 = real_f.mean(0), fake_f.mean(0)
    s1, s2 = np.cov(real_f, rowvar=False), np.cov(fake_f, rowvar=False)
    # tr sqrt(S1 S2) = sum of sqrt(eig(S1^1/2 S2 S1^1/2)), exact for singular covariances too (ReLU
    # features have dead units); S1^1/2 from the symmetric eigendecomposition
    w, v = scipy.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross
    assert row["fid"] == pytest.approx(fid, rel=1e-4)
    # IS: 10 splits of the samples shuffled by torch.randperm(seed 0), as the mnist task scores it
    order = torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(0)).numpy()
    p = scipy.special.softmax(logits.numpy()[order], axis=1)
    splits = [p[i * SAMPLES // 10 : (i + 1) * SAMPLES // 10] for i in range(10)]
    scores = [np.exp((s * (np.log(s) - np.log(s.mean(0)))).sum(1).mean()) for s in splits]
    assert row["is"] == pytest.approx(np.mean(scores), rel=1e-9)


def test_markdown_and_chart(study):
    tmp, _, _ = study
    _, _, md = read_outputs(tmp)
    assert "Regenerate with: `python -m reference_models.loss_study --config tiny --reference embedded" in md
    assert f"{torch.get_num_threads()} torch thread(s)" in md
    assert f"{UPDATES} network updates per run" in md
    assert "| nonsaturating | 2 | 6 | 2 | 0 |" in md and "| wgan-gp | 1 | 6 | 2 | 0 |" in md
    assert "- wgan-gp: " in md and "`train.n_critic: 1 -> 5`" in md
    assert "- nonsaturating: the base config" in md
    assert "nonsaturating seed 1: resumed at step 1" in md
    with Image.open(tmp / "out" / "dcgan-losses.png") as image:
        assert image.size == (1280, 380)
        colors = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert {(31, 119, 180), (214, 39, 40)} <= colors  # a bar per loss, drawn in its colour


def test_second_study_trains_and_scores_nothing_and_a_lost_score_is_redone(study, monkeypatch):
    tmp, _, _ = study
    counter, scored = run_main(monkeypatch, study_argv(tmp))
    assert counter.calls == [] and scored == []
    record_path = run_folder(tmp, "wgan-gp", 0) / "loss-study.json"
    record = json.loads(record_path.read_text())
    fid = record["score"]["metrics"]["fid"]
    record["score"] = None  # killed while scoring
    record_path.write_text(json.dumps(record))
    counter, scored = run_main(monkeypatch, study_argv(tmp))
    assert counter.calls == [] and [p.parent.parent for p in scored] == [run_folder(tmp, "wgan-gp", 0)]
    assert json.loads(record_path.read_text())["score"]["metrics"]["fid"] == pytest.approx(fid, rel=1e-12)


def test_a_run_folder_of_another_config_is_refused(study):
    tmp, _, _ = study
    run = loss_study.plan_runs(["wgan-gp"], [0], "tiny", UPDATES, tmp / "runs")[0]
    run.config["optim"]["D"]["lr"] = 0.5
    with pytest.raises(CheckpointError, match="another config"):
        loss_study.train_run(run, progress=False)


def test_a_diverged_run_is_recorded_counted_and_not_retried(tmp_path, monkeypatch):
    config = loss_study.study_config("nonsaturating", "tiny", UPDATES, 0)
    config["train"]["max_abs_loss"] = 1e-6  # every loss is "exploding"
    run = loss_study.Run("nonsaturating", 0, config, tmp_path / "run")
    trained = loss_study.train_run(run, progress=False)
    assert "training diverged at step 1" in trained["diverged"]
    assert loss_study.score_run(run, task=None) is None
    counter = TrainerCounter()
    monkeypatch.setattr(loss_study, "Trainer", counter)
    assert loss_study.train_run(run, progress=False) == trained and counter.calls == []
    finished = {"loss": "nonsaturating", "seed": 1, "steps": 2, "updates": 6, "status": "ok", "train_s": 1.0}
    runs = pd.DataFrame([loss_study.run_row(run, trained, None), {**finished, "fid": 3.0, "is": 2.0}])
    summary = loss_study.summarize(runs)
    row = summary.iloc[0]
    assert math.isnan(runs.loc[0, "train_s"]) and math.isnan(runs.loc[0, "fid"])  # not a whole run
    assert (row["seeds"], row["diverged"], row["fid_mean"], row["is_mean"]) == (1, 1, 3.0, 2.0)
    assert math.isnan(row["fid_std"]) and row["train_s_mean"] == 1.0
