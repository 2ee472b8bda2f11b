"""The training engine: bit-exact resume, divergence handling, checkpoints, outputs, configs, the CLI, and
the model interface for the paired (SRGAN/DeblurGAN-like) and CycleGAN-like families."""

import argparse
import json
import math

import pytest
import torch
from PIL import Image
from torch import nn

import ganbench
from ganbench.errors import CheckpointError, ConfigError, GanbenchError, TrainingDivergedError
from reference_models.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from reference_models.config import config_dir, load_config, parse_override, resolve
from reference_models.datasets import build_dataset, register_dataset
from reference_models.engine import Adversary, GANModel, LossTerms, Trainer, export_generator, load_trained
from reference_models.registry import register_model

QUIET_LOG = ["log.sample_every=1000", "log.every=1"]


pytestmark = pytest.mark.usefixtures("single_thread")


def trainer(tmp_path, model="dcgan", *overrides, resume=False, name="run") -> Trainer:
    config = load_config(model, "tiny", overrides=list(overrides))
    return Trainer(config, tmp_path / name, resume=resume, progress=False)


def full_state(t: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor that defines where training stands."""
    state = {f"model.{k}": v for k, v in t.model.state_dict().items()}
    for player, optimizer in t.optimizers.items():
        for index, entries in optimizer.state_dict()["state"].items():
            state.update({f"optim.{player}.{index}.{k}": v for k, v in entries.items()})
    state.update({f"extra.{k}": v for k, v in t.model.state_tensors().items()})
    if t.ema is not None:
        state.update({f"ema.{k}": v for k, v in t.ema.state_tensors().items()})
    state["rng.torch"], state["rng.noise"] = torch.get_rng_state(), t.noise.get_state()
    return state


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ after resume: {different[:5]}"


# --- resume


STATEFUL_TRICKS = [
    "train.steps=6",
    "train.n_critic=2",
    "log.checkpoint_every=100",
    *QUIET_LOG,
    "tricks.replay_size=12",
    "tricks.d_dropout=0.2",
    "tricks.instance_noise=0.1",
    "tricks.instance_noise_steps=5",
    "tricks.label_smoothing=0.1",
    "lr_schedule.name=warmup_cosine",
    "lr_schedule.warmup_steps=2",
    "tricks.ema=0.9",
]


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_resume_is_bit_exact(tmp_path, model):
    straight = trainer(tmp_path, model, *STATEFUL_TRICKS, name="straight")
    straight.train()
    straight_state = full_state(straight)  # now: the global RNG moves on below
    first_half = trainer(tmp_path, model, *STATEFUL_TRICKS, name="halves")
    first_half.train(stop_at=3)
    assert [p.name for p in list_checkpoints(tmp_path / "halves" / "checkpoints")] == ["step_00000003.json"]
    torch.manual_seed(1234)  # resuming must restore every RNG, whatever happened meanwhile
    second_half = trainer(tmp_path, model, *STATEFUL_TRICKS, resume=True, name="halves")
    assert second_half.step == 3 and second_half.sampler.state_dict() == first_half.sampler.state_dict()
    second_half.train()
    assert second_half.step == 6
    assert_same_state(straight_state, full_state(second_half))
    metrics = [json.loads(line) for line in (tmp_path / "halves" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_another_config_and_fresh_start_refuses_a_used_folder(tmp_path):
    trainer(tmp_path, "dcgan", "train.steps=2", *QUIET_LOG).train()
    with pytest.raises(CheckpointError, match="loss.name"):
        trainer(tmp_path, "dcgan", "train.steps=4", "loss.name=lsgan", *QUIET_LOG, resume=True)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        trainer(tmp_path, "dcgan", "train.steps=4", *QUIET_LOG)
    longer = trainer(tmp_path, "dcgan", "train.steps=3", *QUIET_LOG, resume=True)  # more steps are fine
    longer.train()
    assert longer.step == 3
    with pytest.raises(CheckpointError, match="no checkpoint"):
        trainer(tmp_path, "dcgan", *QUIET_LOG, resume=True, name="empty")


# --- divergence


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    t = trainer(tmp_path, "dcgan", "train.steps=6", *QUIET_LOG)
    t.train(stop_at=2)
    good = load_checkpoint(tmp_path / "run")
    weights_at_2 = {k: v.clone() for k, v in good.tensors.items()}
    original = t.model.generator_loss

    def poisoned(batch, ctx):
        terms = original(batch, ctx)
        return LossTerms(terms.total * float("nan"), terms.parts) if ctx.step == 2 else terms

    t.model.generator_loss = poisoned
    with pytest.raises(TrainingDivergedError, match=r"step 3: the G loss is nan .*step_00000002\.json"):
        t.train()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002.json"]
    again = load_checkpoint(tmp_path / "run")  # intact: sha256 verified, same tensors
    assert again.record["step"] == 2
    assert all(torch.equal(weights_at_2[k], v) for k, v in again.tensors.items())
    assert all(bool(torch.isfinite(v).all()) for v in t.model.state_dict().values() if v.is_floating_point())


def test_exploding_loss_and_nonfinite_weights_are_refused(tmp_path):
    with pytest.raises(TrainingDivergedError, match="beyond train.max_abs_loss"):
        trainer(tmp_path, "gan", "train.max_abs_loss=1e-3", *QUIET_LOG).train()
    t = trainer(tmp_path, "gan", *QUIET_LOG, name="nanweights")
    with torch.no_grad():
        t.model.G.main[0].weight[0, 0] = float("inf")
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        t.save_checkpoint({})
    assert list_checkpoints(tmp_path / "nanweights" / "checkpoints") == []


# --- checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    t = trainer(root, "cgan", "train.steps=2", "log.every=1", "log.sample_every=2", "log.checkpoint_every=1")
    t.train()
    return root / "run", t


def test_run_folder_outputs(finished_run):
    run, t = finished_run
    record = load_checkpoint(run).record
    assert record["model"] == "cgan" and record["step"] == 2 and record["seed"] == 0
    assert record["code_version"]["ganbench"] == ganbench.__version__
    assert record["data"]["name"] == "embedded" and record["data"]["size"] == 2000
    assert record["config"] == t.config and json.loads((run / "config.json").read_text()) == t.config
    assert set(record["metrics"]) >= {"step", "D/loss", "G/loss", "lr/G", "lr/D"}
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step_00000001.json",
        "step_00000002.json",
    ]
    grid = Image.open(run / "samples" / "step_00000002.png")
    assert grid.size == (10 * 30 + 2, 2 * 30 + 2) and grid.mode == "L"  # 16 samples, one class per column
    assert Image.open(run / "loss_curves.png").size == (720, 420)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_logged_losses_are_averages_over_the_logging_interval(tmp_path):
    every_step = trainer(tmp_path, "gan", "train.steps=4", "log.every=1", name="a")
    every_step.train()
    every_two = trainer(tmp_path, "gan", "train.steps=4", "log.every=2", name="b")
    every_two.train()
    assert [r["step"] for r in every_two.history] == [2, 4]
    for i, record in enumerate(every_two.history):
        pair = every_step.history[2 * i : 2 * i + 2]
        for key in ("D/loss", "G/loss", "G/adv"):
            assert record[key] == pytest.approx((pair[0][key] + pair[1][key]) / 2, rel=1e-6)
        assert record["lr/G"] == pair[1]["lr/G"]


def test_load_trained_restores_the_generator(finished_run):
    run, t = finished_run
    model, record = load_trained(run)
    assert not model.training and record["step"] == 2
    z = torch.Generator().manual_seed(5)
    t.model.eval()
    assert torch.equal(model.sample(10, z), t.model.sample(10, torch.Generator().manual_seed(5)))
    t.model.train()


def test_generator_export_is_small_and_samples_identically(finished_run, tmp_path):
    run, _ = finished_run
    exported = export_generator(run, tmp_path / "export")
    full_model, _ = load_trained(run)
    small_model, record = load_trained(exported)
    assert record["export"] == "generator" and record["step"] == 2
    full_size = (run / "checkpoints" / "step_00000002.safetensors").stat().st_size
    assert exported.with_suffix(".safetensors").stat().st_size < full_size / 3  # no D, optimizers, RNG
    assert torch.equal(small_model.sample(10, torch.Generator().manual_seed(3)),
                       full_model.sample(10, torch.Generator().manual_seed(3)))


def test_generator_export_missing_a_generator_tensor_is_refused(finished_run, tmp_path):
    run, _ = finished_run
    exported = export_generator(run, tmp_path / "export")
    checkpoint = load_checkpoint(exported)
    tensors = dict(checkpoint.tensors)
    tensors.pop(next(k for k in tensors if k.startswith("model.G.")))
    record = {k: v for k, v in checkpoint.record.items() if k not in ("format", "format_version", "tensors")}
    broken = save_checkpoint(tmp_path / "broken", 2, tensors, record)
    with pytest.raises(CheckpointError, match="missing generator tensors"):
        load_trained(broken)


def copy_run(run, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(run / "checkpoints", target)
    return target / "step_00000002.json", target / "step_00000002.safetensors"


def rewrite_record(record_path, **changes):
    record = json.loads(record_path.read_text())
    record.update(changes)
    record_path.write_text(json.dumps(record))


def test_malformed_checkpoints_are_refused(finished_run, tmp_path):
    import hashlib

    from safetensors.torch import save_file

    run, _ = finished_run
    record_path, tensor_path = copy_run(run, tmp_path)
    data = tensor_path.read_bytes()

    tensor_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_checkpoint(record_path)

    tensor_path.write_bytes(b"\xff" * 64)  # garbage with a matching hash: not safetensors
    info = json.loads(record_path.read_text())["tensors"]
    rewrite_record(record_path, tensors={**info, "sha256": hashlib.sha256(b"\xff" * 64).hexdigest()})
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(record_path)

    tensors = load_checkpoint(run).tensors  # well-formed file, but a weight is missing
    del tensors["model.G.project.0.weight"]
    save_file(tensors, tensor_path)
    rewrite_record(
        record_path, tensors={**info, "sha256": hashlib.sha256(tensor_path.read_bytes()).hexdigest()}
    )
    assert load_checkpoint(record_path).record["step"] == 2
    with pytest.raises(CheckpointError, match="do not fit"):
        load_trained(record_path)

    rewrite_record(record_path, format="pickle")
    with pytest.raises(CheckpointError, match="not a ganbench-training-checkpoint"):
        load_checkpoint(record_path)
    record_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable JSON"):
        load_checkpoint(tensor_path)  # the tensor file's path leads to its record
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.json")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


# --- configs


def test_config_loading_and_errors(tmp_path):
    config = load_config(
        "dcgan", "tiny", overrides=["train.n_critic=5", "data.name=fashion", "tricks.label_smoothing=0.1"]
    )
    assert config["train"]["n_critic"] == 5 and config["data"]["name"] == "fashion"
    assert config["model"]["width"] == 8 and config["train"]["n_gen"] == 2  # tiny <- paper
    assert config["tricks"]["instance_noise"] == 0.0  # engine default filled in
    assert resolve(config) == config
    assert parse_override("tricks.progressive.resolutions=[7, 14]") == {
        "tricks": {"progressive": {"resolutions": [7, 14]}}
    }
    cases = {
        "train.stepz=3": "unknown key train.stepz",
        "train.steps=many": "train.steps must be int",
        "train.steps=0": "at least 1",
        "tricks.label_smoothing=1.5": "label_smoothing",
        "train.batch_per=epoch": "batch_per",
        "data.batch_size=0": "batch_size",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config("dcgan", "tiny", overrides=[override])
    with pytest.raises(ConfigError, match="has no config 'fast'"):
        load_config("dcgan", "fast")
    with pytest.raises(ConfigError, match="not 'gan'"):
        load_config("gan", str(config_dir("dcgan") / "tiny.toml"))
    loop = tmp_path / "loop.toml"
    loop.write_text('inherit = "loop.toml"\n')
    with pytest.raises(ConfigError, match="loops"):
        load_config(None, loop)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 'gan'")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(None, bad)
    with pytest.raises(ConfigError, match="unknown config table"):
        resolve({"model": {"name": "gan"}, "trian": {}})


def test_config_file_outside_the_package(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text(
        f'inherit = "{config_dir("gan") / "tiny.toml"}"\n'
        '[loss]\nname = "wgan"\nclip = 0.02\n'
        '[optim.D]\nname = "rmsprop"\nlr = 5e-5\n'
        "[train]\nn_critic = 5\nsteps = 1\n"
    )
    config = load_config(None, own, overrides=[*QUIET_LOG])
    t = Trainer(config, tmp_path / "run", progress=False)
    assert type(t.optimizers["D"]).__name__ == "RMSprop" and t.model.D.loss.weight_clip == 0.02
    t.train()
    assert max(float(p.detach().abs().max()) for p in t.model.D.net.parameters()) <= 0.02


def test_wrong_optimizer_tables_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown optimizer 'adamw2'"):
        trainer(tmp_path, "gan", "optim.D.name=adamw2")
    with pytest.raises(ConfigError, match="unexpected \\['E'\\]"):
        trainer(tmp_path, "gan", "optim.E.name=adam", "optim.E.lr=0.1")


@pytest.mark.needs_data
def test_mnist_and_fashion_training_sets(data_root):
    for name in ("mnist", "fashion"):
        dataset = build_dataset({"name": name, "split": "train", "root": str(data_root), "batch_size": 64})
        item = dataset[0]
        assert len(dataset) == 60_000 and item["image"].shape == (1, 28, 28)
        assert float(item["image"].min()) == -1.0 and float(item["image"].max()) <= 1.0


# --- CLI


def cli(*argv: str) -> int:
    """Parse and run like ``ganbench.cli.main`` with the train and sample sub-commands registered."""
    from ganbench.cli import sample, train

    parser = argparse.ArgumentParser(prog="ganbench")
    subparsers = parser.add_subparsers(dest="command", required=True)
    train.register(subparsers)
    sample.register(subparsers)
    args = parser.parse_args(list(argv))
    try:
        return args.func(args)
    except GanbenchError:
        return 2


def test_cli_train_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        cli("train", "gan", "--config", "tiny", "--steps", "2", "--out", str(out), "--seed", "3", "--quiet")
        == 0
    )
    assert (
        cli(
            "train",
            "gan",
            "--config",
            "tiny",
            "--steps",
            "3",
            "--out",
            str(out),
            "--seed",
            "3",
            "--quiet",
            "--resume",
        )
        == 0
    )
    assert load_checkpoint(out).record["step"] == 3 and load_checkpoint(out).record["seed"] == 3
    grid = tmp_path / "grid.png"
    assert cli("sample", str(out), "-n", "12", "--out", str(grid)) == 0
    assert Image.open(grid).size == (4 * 30 + 2, 3 * 30 + 2)
    assert "12 samples of gan (step 3)" in capsys.readouterr().out
    assert (
        cli("train", "gan", "--config", "tiny", "--out", str(tmp_path / "x"), "--set", "loss.name=nope") == 2
    )
    assert cli("sample", str(tmp_path / "x"), "--out", str(grid)) == 2


# --- interface


class ToyImages:
    """Paired (input, target) and unpaired (A, B) 8x8 images, enough for the interface tests."""

    def __init__(self, n: int = 32):
        generator = torch.Generator().manual_seed(0)
        self.target = torch.rand(n, 1, 8, 8, generator=generator) * 2 - 1
        self.epochs = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> dict:
        return {
            "input": self.target[i].flip(-1),
            "target": self.target[i],
            "A": self.target[i],
            "B": -self.target[i],
        }


register_dataset("test-toy")(ToyImages)


def toy_d() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 1))


class PairedToy(GANModel):
    """SRGAN/DeblurGAN-shaped: content loss + adversarial loss, D on targets vs outputs."""

    def __init__(self, config, content_only: bool):
        super().__init__()
        self.G = nn.Conv2d(1, 1, 3, padding=1)
        if content_only:
            self.players = {"G": ("G",)}
        else:
            self.D = Adversary.from_config(toy_d(), config)

    def discriminator_loss(self, batch, ctx):
        return self.D.discriminator_loss(batch["target"], self.G(batch["input"]), ctx)

    def generator_loss(self, batch, ctx):
        output = self.G(batch["input"])
        content = (output - batch["target"]).square().mean()
        parts = {"content": content.detach()}
        total = content
        if "D" in self.players:
            adv = self.D.generator_loss(output, ctx)
            total, parts["adv"] = content + 1e-3 * adv, adv.detach()
        return LossTerms(total, parts)

    def preview_inputs(self, dataset, n, generator):
        return {"input": torch.stack([dataset[i]["input"] for i in range(n)])}

    def preview(self, inputs):
        return self.G(inputs["input"]).clamp(-1, 1)


class CycleToy(GANModel):
    """CycleGAN-shaped: two generators, two adversaries, G updated first, D on the G step's fakes."""

    players = {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")}
    update_order = ("G", "D")

    def __init__(self, config):
        super().__init__()
        self.G_AB, self.G_BA = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)
        self.D_A, self.D_B = Adversary.from_config(toy_d(), config), Adversary.from_config(toy_d(), config)
        self.fakes = None

    def generator_loss(self, batch, ctx):
        fake_b, fake_a = self.G_AB(batch["A"]), self.G_BA(batch["B"])
        cycle = (self.G_BA(fake_b) - batch["A"]).abs().mean() + (self.G_AB(fake_a) - batch["B"]).abs().mean()
        adv = self.D_B.generator_loss(fake_b, ctx) + self.D_A.generator_loss(fake_a, ctx)
        self.fakes = (fake_a.detach(), fake_b.detach())
        return LossTerms(adv + 10 * cycle, {"adv": adv.detach(), "cycle": cycle.detach()})

    def discriminator_loss(self, batch, ctx):
        fake_a, fake_b = self.fakes
        a, b = (
            self.D_A.discriminator_loss(batch["A"], fake_a, ctx),
            self.D_B.discriminator_loss(batch["B"], fake_b, ctx),
        )
        return LossTerms(a.total + b.total, {"A": a.total.detach(), "B": b.total.detach()})

    def preview_inputs(self, dataset, n, generator):
        return {"A": torch.stack([dataset[i]["A"] for i in range(n)])}

    def preview(self, inputs):
        return self.G_AB(inputs["A"]).clamp(-1, 1)


register_model("test-paired", "toy paired GAN")(
    lambda config, content_only=False: PairedToy(config, content_only)
)
register_model("test-cycle", "toy CycleGAN")(lambda config: CycleToy(config))


def toy_config(name: str, **tables) -> dict:
    table = {
        "model": {"name": name},
        "data": {"name": "test-toy", "batch_size": 4},
        "loss": {"name": "lsgan"},
        "optim": {"G": {"name": "adam", "lr": 1e-3}, "D": {"name": "adam", "lr": 1e-3}},
        "train": {"steps": 10},
        "log": {"every": 1, "sample_every": 5, "checkpoint_every": 5, "n_samples": 4},
    }
    for name, values in tables.items():
        table[name] = values if name == "optim" else {**table.get(name, {}), **values}
    return resolve(table)


def test_paired_family_with_content_loss(tmp_path):
    config = toy_config("test-paired", train={"steps": 10, "n_critic": 5, "batch_per": "step"})
    t = Trainer(config, tmp_path / "paired", progress=False)
    metrics = t.train()
    assert {"G/content", "G/adv", "D/adv"} <= set(metrics)
    assert {float(s["step"]) for s in t.optimizers["D"].state.values()} == {50.0}
    assert t.sampler.epoch * 8 + t.sampler.position // 4 == 10  # one batch per step: 10 batches of 4
    assert t.dataset.epochs == [0, 1]  # set_epoch at the start and at each new epoch (8 batches an epoch)


def test_content_only_pretraining_needs_no_discriminator(tmp_path):
    config = toy_config(
        "test-paired", model={"content_only": True}, optim={"G": {"name": "adam", "lr": 1e-2}}
    )
    t = Trainer(config, tmp_path / "pre", progress=False)
    first = t.train(stop_at=1)["G/content"]
    last = t.train()["G/content"]
    assert set(t.optimizers) == {"G"} and last < first


def test_cycle_family_updates_generators_first_and_resumes_pools(tmp_path):
    config = toy_config("test-cycle", tricks={"replay_size": 6})
    straight = Trainer(config, tmp_path / "a", progress=False)
    straight.train()
    assert {float(s["step"]) for s in straight.optimizers["G"].state.values()} == {10.0}
    assert straight.model.D_A.replay.count == 6 and straight.model.D_B.replay.count == 6
    halves = Trainer(config, tmp_path / "b", progress=False)
    halves.train(stop_at=4)
    resumed = Trainer(config, tmp_path / "b", resume=True, progress=False)
    resumed.train()
    assert_same_state(full_state(straight), full_state(resumed))
    assert set(full_state(resumed)) >= {"extra.D_A.replay.x", "extra.D_B.replay.x"}
    assert math.isfinite(json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[-1])["D/A"])
