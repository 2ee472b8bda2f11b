"""Each training trick of seed 003 acts as configured (values checked against the formulas)."""

import math

import pytest
import torch
from torch import nn

from ganbench.errors import ConfigError
from reference_models.config import load_config
from reference_models.dcgan import DCGANDiscriminator
from reference_models.engine import Adversary, StepContext, Trainer, export_generator, load_trained
from reference_models.losses import build_loss
from reference_models.registry import build
from reference_models.tricks import (
    ProgressiveSchedule,
    ReplayBuffer,
    WeightAverage,
    at_resolution,
    init_weights,
    instance_noise_std,
    lr_factor,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def ctx(step: int = 0, seed: int = 0) -> StepContext:
    return StepContext(step, 1000, torch.Generator().manual_seed(seed), torch.device("cpu"))


def tiny_trainer(tmp_path, *overrides: str, model: str = "dcgan") -> Trainer:
    config = load_config(
        model, "tiny", overrides=["log.sample_every=1000", "log.checkpoint_every=1000", *overrides]
    )
    return Trainer(config, tmp_path / "run", progress=False)


class Linear1(nn.Module):
    """D(x) = <w, x> + b on flattened inputs: outputs known in closed form."""

    def __init__(self, size: int):
        super().__init__()
        self.fc = nn.Linear(size, 1)

    def forward(self, x):
        return self.fc(x.flatten(1))


# --- label smoothing


def test_label_smoothing_makes_the_real_target_0_9():
    torch.manual_seed(0)
    net = Linear1(4)
    adversary = Adversary(net, build_loss("nonsaturating"), label_smoothing=0.1)
    assert adversary.real_target == pytest.approx(0.9)
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    terms = adversary.discriminator_loss(real, fake, ctx())
    with torch.no_grad():
        r, f = net(real).double().flatten(), net(fake).double().flatten()
    by_hand = (
        -(0.9 * torch.log(torch.sigmoid(r)) + 0.1 * torch.log(1 - torch.sigmoid(r))).mean()
        - torch.log(1 - torch.sigmoid(f)).mean()
    )
    assert float(terms.total.detach()) == pytest.approx(float(by_hand), rel=1e-5)


def test_label_smoothing_is_refused_for_losses_without_targets():
    with pytest.raises(ConfigError, match="label smoothing"):
        Adversary(Linear1(4), build_loss("hinge"), label_smoothing=0.1)


# --- n critic / n gen


@pytest.mark.parametrize(("batch_per", "batches"), [("update", 3), ("step", 1)])
def test_n_critic_and_n_gen_steps(tmp_path, batch_per, batches):
    trainer = tiny_trainer(tmp_path, "train.n_critic=3", "train.n_gen=2", f"train.batch_per={batch_per}")
    trainer.train(stop_at=1)
    d_steps = {float(s["step"]) for s in trainer.optimizers["D"].state.values()}
    g_steps = {float(s["step"]) for s in trainer.optimizers["G"].state.values()}
    assert d_steps == {3.0} and g_steps == {2.0}
    assert trainer.sampler.position == batches * trainer.config["data"]["batch_size"]


# --- initialisation


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [("xavier", math.sqrt(2.0 / (1000 + 500))), ("he", math.sqrt(2.0 / 1000)), ("normal", 0.02)],
)
def test_init_statistics(scheme, expected_std):
    torch.manual_seed(0)
    layer = nn.Linear(1000, 500)
    init_weights(layer, scheme)
    weight = layer.weight.detach()
    assert float(weight.std()) == pytest.approx(expected_std, rel=0.02)
    assert float(weight.mean()) == pytest.approx(0.0, abs=0.02 * expected_std * 3)
    assert float(layer.bias.detach().abs().max()) == 0.0
    if scheme == "xavier":  # Glorot uniform: bounded by sqrt(6 / (fan_in + fan_out))
        assert float(weight.abs().max()) <= math.sqrt(6.0 / 1500)


def test_init_uses_conv_fans_and_is_applied_by_build():
    torch.manual_seed(0)
    conv = init_weights(nn.Conv2d(64, 128, 5), "he")  # fan_in = 64 * 5 * 5
    assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / 1600), rel=0.02)
    config = load_config("dcgan", "tiny", overrides=["tricks.init=normal", "model.width=16"])
    torch.manual_seed(0)
    model = build(config)
    weights = torch.cat(
        [
            m.weight.detach().flatten()
            for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
        ]
    )
    assert float(weights.std()) == pytest.approx(0.02, rel=0.02)
    with pytest.raises(ConfigError, match="unknown tricks.init"):
        init_weights(conv, "orthogonal")


# --- LR schedules


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ({"name": "constant"}, 500, 1.0),
        ({"name": "time_decay", "decay": 0.01}, 100, 1.0 / (1.0 + 0.01 * 100)),
        ({"name": "exponential", "decay": 0.001}, 1000, math.exp(-1.0)),
        ({"name": "warmup_cosine", "warmup_steps": 10, "min_factor": 0.1}, 4, 0.5),
        ({"name": "warmup_cosine", "warmup_steps": 10, "min_factor": 0.1}, 10, 1.0),
        ({"name": "warmup_cosine", "warmup_steps": 10, "min_factor": 0.1}, 60, 0.1 + 0.9 * 0.5),
        (
            {"name": "warmup_cosine", "warmup_steps": 10, "min_factor": 0.1},
            35,
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)),
        ),
        ({"name": "warmup_cosine", "warmup_steps": 10, "min_factor": 0.1}, 110, 0.1),
        ({"name": "warmup_cyclic", "warmup_steps": 0, "cycle_steps": 100, "min_factor": 0.2}, 0, 1.0),
        ({"name": "warmup_cyclic", "warmup_steps": 0, "cycle_steps": 100, "min_factor": 0.2}, 25, 0.6),
        ({"name": "warmup_cyclic", "warmup_steps": 0, "cycle_steps": 100, "min_factor": 0.2}, 50, 0.2),
        ({"name": "warmup_cyclic", "warmup_steps": 20, "cycle_steps": 100, "min_factor": 0.2}, 195, 0.6),
    ],
)
def test_lr_schedule_values(schedule, step, expected):
    full = {"decay": 0.0, "warmup_steps": 0, "min_factor": 0.0, "cycle_steps": 1000, **schedule}
    assert lr_factor(full, step, total_steps=110) == pytest.approx(expected, rel=1e-12)


def test_trainer_applies_the_lr_schedule(tmp_path):
    trainer = tiny_trainer(tmp_path, "lr_schedule.name=time_decay", "lr_schedule.decay=0.5")
    metrics = trainer.train(stop_at=3)  # the third step is step index 2
    assert metrics["lr/G"] == pytest.approx(2e-4 / (1 + 0.5 * 2), rel=1e-12)
    assert trainer.optimizers["D"].param_groups[0]["lr"] == pytest.approx(1e-4, rel=1e-12)
    with pytest.raises(ConfigError, match="unknown lr_schedule.name"):
        tiny_trainer(tmp_path / "b", "lr_schedule.name=step")


# --- experience replay


def test_replay_buffer_returns_past_fakes():
    generator = torch.Generator().manual_seed(0)
    first = {"x": torch.arange(4.0).view(4, 1), "c": torch.arange(4)}
    second = {"x": torch.arange(10.0, 14.0).view(4, 1), "c": torch.arange(10, 14)}
    pool = ReplayBuffer(capacity=4, prob=1.0)
    assert torch.equal(pool.exchange(first, generator)["x"], first["x"])  # filling: returned as is
    out = pool.exchange(second, generator)
    values = out["x"].flatten().tolist()
    assert any(v < 4 for v in values), "no past fake came back"
    assert set(values) <= set(range(4)) | set(range(10, 14))
    assert torch.equal(out["c"].float(), out["x"].flatten())  # labels travel with their images
    stored = pool.state_tensors()["x"].flatten().tolist()
    assert sorted(stored + values) == [0, 1, 2, 3, 10, 11, 12, 13]  # each swap returns one, stores one


def test_replay_buffer_prob_zero_and_state_round_trip():
    generator = torch.Generator().manual_seed(1)
    pool = ReplayBuffer(capacity=3, prob=0.0)
    pool.exchange({"x": torch.zeros(3, 2)}, generator)
    batch = {"x": torch.ones(3, 2)}
    assert torch.equal(pool.exchange(batch, generator)["x"], batch["x"])
    pool.prob = 0.5
    copy = ReplayBuffer(capacity=3, prob=0.5)
    copy.load_state_tensors(pool.state_tensors())
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    fresh = {"x": torch.full((3, 2), 5.0)}
    assert torch.equal(pool.exchange(fresh, g1)["x"], copy.exchange(fresh, g2)["x"])


def test_adversary_feeds_replayed_fakes_to_d():
    torch.manual_seed(0)
    adversary = Adversary(Linear1(2), build_loss("wgan"), replay_size=1, replay_prob=1.0)
    real, old, new = torch.zeros(1, 2), torch.full((1, 2), 3.0), torch.full((1, 2), -3.0)
    adversary.discriminator_loss(real, old, ctx())
    # With prob 1 the new fake is swapped for the stored one: D scores the old fake again.
    terms = adversary.discriminator_loss(real, new, ctx(seed=3))
    with torch.no_grad():
        expected = adversary.net(old).mean() - adversary.net(real).mean()
        unexpected = adversary.net(new).mean() - adversary.net(real).mean()
    assert float(terms.parts["adv"]) == pytest.approx(float(expected), rel=1e-6)
    assert abs(float(expected) - float(unexpected)) > 0.1
    assert torch.equal(adversary.replay.state_tensors()["x"], new)


# --- dropout in D


def test_dropout_in_d_acts():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28)
    with_dropout = DCGANDiscriminator(width=4, dropout=0.5)
    assert [m.p for m in with_dropout.modules() if isinstance(m, nn.Dropout)] == [0.5] * 4
    assert not torch.equal(with_dropout(x), with_dropout(x))  # training mode: random masks
    with_dropout.eval()
    assert torch.equal(with_dropout(x), with_dropout(x))
    assert not any(isinstance(m, nn.Dropout) for m in DCGANDiscriminator(width=4).modules())
    for model in ("gan", "dcgan", "cgan"):
        built = build(load_config(model, "tiny", overrides=["tricks.d_dropout=0.3"]))
        assert {m.p for m in built.D.net.modules() if isinstance(m, nn.Dropout)} == {0.3}


# --- instance noise


def test_instance_noise_std_decays_linearly():
    assert instance_noise_std(0, 0.1, 100) == pytest.approx(0.1)
    assert instance_noise_std(50, 0.1, 100) == pytest.approx(0.05)
    assert instance_noise_std(100, 0.1, 100) == 0.0
    assert instance_noise_std(500, 0.1, 100) == 0.0
    assert instance_noise_std(500, 0.1, 0) == pytest.approx(0.1)  # no decay


def test_instance_noise_is_added_to_d_inputs():
    adversary = Adversary(
        Linear1(784), build_loss("nonsaturating"), instance_noise=0.2, instance_noise_steps=100
    )
    images = torch.zeros(200, 1, 28, 28)
    early, late, done = (adversary.view(images, ctx(step)) for step in (0, 75, 100))
    assert float(early.std()) == pytest.approx(0.2, rel=0.01)
    assert float(late.std()) == pytest.approx(0.05, rel=0.01)
    assert float(done.abs().max()) == 0.0


# --- L2 weight penalty


def test_d_weight_penalty_adds_lambda_sum_of_squares():
    torch.manual_seed(0)
    net = Linear1(5)
    real, fake = torch.randn(3, 5), torch.randn(3, 5)
    adversary = Adversary(net, build_loss("lsgan"), weight_penalty=0.01)
    terms = adversary.discriminator_loss(real, fake, ctx())
    by_hand = 0.01 * sum(float((p.detach().double() ** 2).sum()) for p in net.parameters())
    assert float(terms.parts["l2"]) == pytest.approx(by_hand, rel=1e-6)
    assert float(terms.total.detach()) == pytest.approx(float(terms.parts["adv"]) + by_hand, rel=1e-6)
    # The penalty adds 2 * lambda * w to D's gradient.
    (with_penalty,) = torch.autograd.grad(terms.total, net.fc.weight)
    (plain,) = torch.autograd.grad(
        Adversary(net, build_loss("lsgan")).discriminator_loss(real, fake, ctx()).total, net.fc.weight
    )
    assert torch.allclose(with_penalty - plain, 0.02 * net.fc.weight.detach(), atol=1e-7)


def test_wgan_clips_d_weights_after_each_update():
    net = Linear1(3)
    with torch.no_grad():
        net.fc.weight.fill_(0.5)
        net.fc.bias.fill_(-0.3)
    Adversary(net, build_loss("wgan", clip=0.01)).after_step()
    assert float(net.fc.weight.detach().max()) == pytest.approx(0.01)
    assert float(net.fc.bias.detach().min()) == pytest.approx(-0.01)


# --- progressive


@pytest.mark.parametrize(
    ("step", "state"),
    [
        (0, (7, 7, 1.0)),
        (99, (7, 7, 1.0)),
        (100, (14, 7, 0.0)),
        (125, (14, 7, 0.5)),
        (150, (14, 7, 1.0)),
        (199, (14, 7, 1.0)),
        (200, (28, 14, 0.0)),
        (240, (28, 14, 0.8)),
        (10_000, (28, 14, 1.0)),
    ],
)
def test_progressive_schedule_resolution_at_steps(step, state):
    assert ProgressiveSchedule([7, 14, 28], phase_steps=100, fade_steps=50).state(step) == pytest.approx(
        state
    )


def test_progressive_view_of_d():
    torch.manual_seed(0)
    images = torch.randn(2, 1, 28, 28)
    schedule = ProgressiveSchedule([7, 14, 28], phase_steps=100, fade_steps=50)
    coarse = schedule.apply(images, 0)
    def blocky(size: int) -> torch.Tensor:
        """Means of (28 / size)-pixel blocks, each repeated over its block (nearest up-sampling)."""
        f = 28 // size
        means = images.view(2, 1, size, f, size, f).mean(dim=(3, 5))
        return means.repeat_interleave(f, 2).repeat_interleave(f, 3)

    assert torch.allclose(coarse, blocky(7), atol=1e-6)
    faded = schedule.apply(images, 125)  # half-way through the 7 -> 14 fade-in
    assert torch.allclose(faded, 0.5 * blocky(14) + 0.5 * blocky(7), atol=1e-6)
    assert torch.equal(schedule.apply(images, 300), images)
    with pytest.raises(ConfigError, match="must rise"):
        ProgressiveSchedule([14, 7], 10, 5)
    with pytest.raises(ConfigError, match="divide"):
        ProgressiveSchedule([8, 16], 10, 5).apply(images, 0)


def test_progressive_trick_reaches_d_in_training(tmp_path):
    trainer = tiny_trainer(
        tmp_path,
        "tricks.progressive.resolutions=[7, 14, 28]",
        "tricks.progressive.phase_steps=2",
        "tricks.progressive.fade_steps=1",
    )
    assert trainer.model.D.progressive.state(2) == (14, 7, 0.0)
    seen = []
    trainer.model.D.net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    trainer.train(stop_at=1)
    first = seen[0]  # D's view of the real batch at step 0: constant 4x4 blocks (7x7 resolution)
    assert torch.allclose(first, at_resolution(first, 7), atol=1e-6)
    assert not torch.allclose(first, at_resolution(first, 4), atol=1e-3)


# --- moving average of the generator's weights


def test_weight_average_follows_the_formula_with_warm_up():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage({"G": net}, decay=0.9)
    expected = net[0].weight.detach().double().clone()
    for n in range(12):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        net[1].num_batches_tracked += 1
        average.update()
        d = min(0.9, (1 + n) / (10 + n))  # warm-up first, then the decay
        expected = d * expected + (1 - d) * net[0].weight.detach().double()
    assert torch.allclose(average.average["G.0.weight"].double(), expected, atol=1e-5)
    assert int(average.average["G.1.num_batches_tracked"]) == 12  # integer buffers are copied
    with pytest.raises(ConfigError, match="tricks.ema"):
        WeightAverage({"G": net}, decay=1.0)


def test_ema_weights_drive_samples_and_evaluation(tmp_path):
    trainer = tiny_trainer(tmp_path, "tricks.ema=0.5", "train.steps=4")
    trainer.train()
    raw = {k: v.clone() for k, v in trainer.model.G.state_dict().items()}
    with trainer.ema.swapped_in():
        swapped = {k: v.clone() for k, v in trainer.model.G.state_dict().items()}
    after = trainer.model.G.state_dict()
    assert all(torch.equal(raw[k], after[k]) for k in raw)  # the trained weights come back
    key = next(k for k in raw if k.endswith("weight"))
    assert not torch.equal(swapped[key], raw[key])
    assert torch.equal(swapped[key], trainer.ema.average[f"G.{key}"])
    # The checkpoint carries the averages and load_trained gives them to the generator.
    model, _ = load_trained(trainer.last_checkpoint)
    assert torch.equal(model.G.state_dict()[key], swapped[key])
    exported, _ = load_trained(export_generator(trainer.last_checkpoint, tmp_path / "export"))
    assert torch.equal(exported.G.state_dict()[key], swapped[key])
