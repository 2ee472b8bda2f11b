"""SRResNet, SRGAN, DeblurGAN and CycleGAN through the training engine, from their tiny configs.

Each model trains a few steps on the real data classes (train291 crops from a small copy of the data
root, MNIST <-> MNIST-M), resumes bit-exactly, and logs loss parts whose weighted sum is the logged
total. SRGAN starts from an SRResNet checkpoint; the VGG content loss needs weights unless a config
asks for random ones.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.errors import CheckpointError, ConfigError, WeightsNotFoundError
from reference_models.checkpoint import list_checkpoints
from reference_models.config import load_config
from reference_models.datasets import build_dataset
from reference_models.engine import Trainer, load_trained
from reference_models.image2image import ContentLoss
from reference_models.registry import build

MODELS = ("srresnet", "srgan", "deblurgan", "cyclegan")


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def small_root(data_root, tmp_path_factory):
    """A data root whose train291 holds six of its photos (links), so crop data sets build fast."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "sr" / "train291" / "T91"
    folder.mkdir(parents=True)
    for photo in sorted((data_root / "sr" / "train291" / "T91").glob("*.png"))[:6]:
        (folder / photo.name).symlink_to(photo.resolve())  # data_root may be relative
    return root


def tiny(model: str, small_root, *overrides: str) -> dict:
    """The tiny config of ``model``; crop data sets read ``small_root``."""
    data = [] if model == "cyclegan" else [f"data.root={json.dumps(str(small_root))}"]
    return load_config(model, "tiny", [*data, *overrides])


def full_state(t: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor that defines where training stands."""
    state = {f"model.{k}": v for k, v in t.model.state_dict().items()}
    for player, optimizer in t.optimizers.items():
        for index, entries in optimizer.state_dict()["state"].items():
            state.update({f"optim.{player}.{index}.{k}": v for k, v in entries.items()})
    state.update({f"extra.{k}": v for k, v in t.model.state_tensors().items()})
    state["rng.torch"], state["rng.noise"] = torch.get_rng_state(), t.noise.get_state()
    return state


@pytest.fixture(scope="module")
def srresnet_run(small_root, tmp_path_factory):
    """A 2-step tiny SRResNet run (its checkpoint starts the SRGAN tests)."""
    root = tmp_path_factory.mktemp("srresnet")
    t = Trainer(tiny("srresnet", small_root, "train.steps=2"), root / "run", progress=False)
    t.train()
    return root / "run", t


# Logged loss parts, and the total each player's loss must be: {part: weight}.
LOSS_PARTS = {
    "srresnet": {"G": {"content": 1.0}},
    "srgan": {"G": {"content": 1.0, "adv": 1e-3}, "D": {"adv": 1.0}},
    "deblurgan": {"G": {"content": 100.0, "adv": 1.0}, "D": {"adv": 1.0, "gp": 10.0}},
    "cyclegan": {"G": {"adv": 2.0, "cycle": 10.0, "identity": 1.0}, "D": {"A/adv": 1.0, "B/adv": 1.0}},
}


@pytest.mark.parametrize("model", MODELS)
def test_tiny_run_resumes_bit_exactly_and_logs_loss_parts(model, small_root, srresnet_run, tmp_path):
    extra = [f"model.init_from={json.dumps(str(srresnet_run[0]))}"] if model == "srgan" else []
    config = tiny(model, small_root, *extra)
    straight = Trainer(config, tmp_path / "straight", progress=False)
    straight.train()
    a = full_state(straight)  # now: it holds the global RNG state
    halves = Trainer(config, tmp_path / "halves", progress=False)
    halves.train(stop_at=2)
    torch.manual_seed(1234)  # resuming restores every RNG (dropout, random B images, flips, pools)
    resumed = Trainer(config, tmp_path / "halves", resume=True, progress=False)
    assert resumed.step == 2
    resumed.train()
    b = full_state(resumed)
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []

    records = [json.loads(line) for line in (tmp_path / "halves" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    for record in records:
        for player, weights in LOSS_PARTS[model].items():
            assert {f"{player}/{part}" for part in weights} <= set(record)
            total = sum(w * record[f"{player}/{part}"] for part, w in weights.items())
            assert record[f"{player}/loss"] == pytest.approx(total, rel=1e-5, abs=1e-6)
    assert set(straight.optimizers) == set(LOSS_PARTS[model])


def test_sample_grids_show_inputs_outputs_and_targets(small_root, srresnet_run, tmp_path):
    run, t = srresnet_run
    grid = Image.open(run / "samples" / "step_00000002.png")
    assert grid.mode == "RGB" and grid.size == (3 * 34 + 2, 2 * 34 + 2)  # 2 rows of LR | SR | HR, 32 px
    t.model.eval()
    with torch.no_grad():
        images = t.model.preview(t.preview_inputs)
    t.model.train()
    # Column 3 is the HR target, column 1 the LR input bicubic-upscaled: close to it, not equal.
    assert torch.equal(images[2::3], t.preview_inputs["hr"])
    error = (images[0::3] - t.preview_inputs["hr"]).abs().mean()
    assert 0.0 < float(error) < 0.2

    cycle = Trainer(tiny("cyclegan", small_root, "train.steps=1"), tmp_path / "cycle", progress=False)
    cycle.train()
    grid = Image.open(tmp_path / "cycle" / "samples" / "step_00000001.png")
    assert grid.mode == "RGB" and grid.size == (6 * 34 + 2, 2 * 34 + 2)  # a | a->b | a->b->a | b | ...


# --- SRGAN from an SRResNet


def test_srgan_starts_from_the_srresnet_checkpoint(small_root, srresnet_run, tmp_path):
    run, pretrained = srresnet_run
    init = f"model.init_from={json.dumps(str(run))}"
    config = tiny("srgan", small_root, init, "optim.G.lr=0", "train.steps=1")
    t = Trainer(config, tmp_path / "gan", progress=False)
    source = dict(pretrained.model.G.named_parameters())
    assert not all(torch.equal(p, source[k]) for k, p in t.model.G.named_parameters())
    t.train()  # G is loaded before the first update; lr 0 keeps it
    assert all(torch.equal(p, source[k]) for k, p in t.model.G.named_parameters())

    # Resuming (and evaluating) takes G from the SRGAN checkpoint, never from init_from.
    moved = run.with_name("moved")
    run.rename(moved)
    try:
        resumed = Trainer(
            tiny("srgan", small_root, init, "optim.G.lr=0", "train.steps=2"), tmp_path / "gan", resume=True,
            progress=False,
        )
        resumed.train()
        model, _ = load_trained(tmp_path / "gan")
        assert all(torch.equal(p, source[k]) for k, p in model.G.named_parameters())
        with pytest.raises(CheckpointError, match="model.init_from = .*Train the SRResNet first"):
            Trainer(tiny("srgan", small_root, init), tmp_path / "fresh", progress=False).train()
    finally:
        moved.rename(run)


def test_srgan_refuses_checkpoints_that_do_not_fit(small_root, srresnet_run, tmp_path):
    run, _ = srresnet_run
    init = f"model.init_from={json.dumps(str(run))}"
    with pytest.raises(CheckpointError, match="does not fit this SRGAN"):
        Trainer(tiny("srgan", small_root, init, "model.features=4"), tmp_path / "a", progress=False).train()
    deblur = Trainer(tiny("deblurgan", small_root, "train.steps=1"), tmp_path / "deblur", progress=False)
    deblur.train()
    other = f"model.init_from={json.dumps(str(tmp_path / 'deblur'))}"
    with pytest.raises(CheckpointError, match="is a 'deblurgan' checkpoint, not srresnet"):
        Trainer(tiny("srgan", small_root, other), tmp_path / "b", progress=False).train()
    assert list_checkpoints(tmp_path / "b" / "checkpoints") == []


# --- content losses


def test_pixel_content_losses_are_the_pixel_mse_and_l1():
    generator = torch.Generator().manual_seed(0)
    x, y = (torch.rand(2, 3, 8, 8, generator=generator) * 2 - 1 for _ in range(2))
    difference = x.double().numpy() - y.double().numpy()
    assert float(ContentLoss("pixel-mse")(x, y)) == pytest.approx(np.mean(difference**2), rel=1e-6)
    assert float(ContentLoss("pixel-l1")(x, y)) == pytest.approx(np.mean(np.abs(difference)), rel=1e-6)
    with pytest.raises(ConfigError, match="model.content must be one of pixel-mse, pixel-l1, vgg"):
        ContentLoss("vgg54")
    with pytest.raises(ConfigError, match="model.vgg_network"):
        ContentLoss("vgg", vgg_network="vgg19_relu9_9")


def test_vgg_content_loss_is_the_feature_mse_of_images_in_0_1():
    from ganbench.features.vgg import IMAGENET_MEAN, IMAGENET_STD, load_vgg_features

    generator = torch.Generator().manual_seed(1)
    x, y = (torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1 for _ in range(2))
    loss = ContentLoss("vgg", vgg_network="vgg16_relu2_2", vgg_weights="random", vgg_feature_scale=0.5)
    vgg = load_vgg_features("vgg16_relu2_2", "random").double()
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)

    def features(images):
        return 0.5 * vgg(((images.double() + 1) / 2 - mean) / std)

    expected = (features(x) - features(y)).square().mean()
    assert float(loss(x, y)) == pytest.approx(float(expected), rel=1e-4)


@pytest.fixture
def no_vgg_weights(monkeypatch, tmp_path):
    """An environment where no ImageNet VGG weights can be found."""
    for name in ("GANBENCH_VGG16_WEIGHTS", "GANBENCH_VGG19_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_vgg_content_needs_weights_unless_a_config_asks_for_random_ones(small_root, no_vgg_weights, tmp_path):
    vgg = ["model.content=vgg", "model.vgg_network=vgg16_relu2_2"]
    t = Trainer(tiny("srresnet", small_root, *vgg), tmp_path / "refused", progress=False)
    refusal = r"model.content = 'vgg' .*needs ImageNet VGG weights.*pixel-mse"
    with pytest.raises(WeightsNotFoundError, match=refusal):
        t.train()
    assert list_checkpoints(tmp_path / "refused" / "checkpoints") == []
    # Building (and evaluating) a VGG-trained model needs no weights: the loss is built on first use.
    assert load_config("srgan", "paper")["model"]["content"] == "vgg"
    build(load_config("srgan", "tiny", ["model.content=vgg"]))

    explicit = tiny("srresnet", small_root, *vgg, "model.vgg_weights=random", "train.steps=2")
    straight = Trainer(explicit, tmp_path / "straight", progress=False)
    metrics = straight.train()
    a = full_state(straight)
    assert metrics["G/content"] > 0.0 and metrics["G/loss"] == metrics["G/content"]
    assert not any("vgg" in k for k in straight.model.state_dict())  # VGG is not checkpointed
    # Building VGG on first use (at different steps here) leaves the run's random numbers alone.
    Trainer(explicit, tmp_path / "halves", progress=False).train(stop_at=1)
    resumed = Trainer(explicit, tmp_path / "halves", resume=True, progress=False)
    resumed.train()
    b = full_state(resumed)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


# --- configs, sampling


@pytest.mark.parametrize(
    "model,networks",
    [
        ("srresnet", {"G": 1_549_462}),  # the paper's SRResNet (module docstring of srgan.py)
        ("srgan", {"G": 1_549_462, "D.net": 23_565_505}),
        ("cyclegan", {"G_AB": 1_545_425, "G_BA": 1_545_425, "D_A.net": 2_764_743, "D_B.net": 2_764_743}),
    ],
)
def test_paper_configs_build_the_seed_networks(model, networks):
    built = build(load_config(model, "paper"))
    for name, count in networks.items():
        assert sum(p.numel() for p in built.get_submodule(name).parameters()) == count


def test_deblurgan_paper_config_is_seed_004():
    config = load_config("deblurgan", "paper")
    assert (config["loss"], config["train"]["n_critic"], config["train"]["batch_per"]) == (
        {"name": "wgan-gp", "gp_weight": 10.0}, 5, "step"
    )
    model = build(config)
    assert (model.content_weight, model.adv_weight) == (100.0, 1.0)
    assert model.content.vgg_network == "vgg16_relu3_3"
    assert model.D.net.image_size == 256 and len(model.G.body) == 4 + 6 + 9 + 6 + 3


@pytest.mark.parametrize("model", MODELS)
def test_cpu_configs_need_no_vgg_weights(model):
    """No ImageNet VGG weights exist offline: the cpu configs use a declared pixel content loss."""
    config = load_config(model, "cpu")
    assert config["model"].get("content", "none") in ("none", "pixel-mse", "pixel-l1")


def test_sample_refuses_translation_models_clearly(srresnet_run, capsys):
    from ganbench.cli import main

    run, _ = srresnet_run
    model, _ = load_trained(run)
    refusal = "srresnet translates lr images.*ganbench score CHECKPOINT --task sr-x4"
    with pytest.raises(ConfigError, match=refusal):
        model.sample(4, torch.Generator())
    assert main(["sample", str(run), "-n", "4", "--out", str(run / "x.png")]) == 2
    assert "it cannot sample from noise" in capsys.readouterr().err


# --- data sets


def test_image_folder_pairs(tmp_path):
    rng = np.random.default_rng(0)
    for folder, count in (("trainA", 3), ("trainB", 2)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            array = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(array).save(tmp_path / folder / f"{i}.png")
    same = build_dataset({"name": "image-folders", "folder": str(tmp_path), "size": 16, "flip": False})
    assert len(same) == 3
    original = np.array(Image.open(tmp_path / "trainA" / "1.png")).transpose(2, 0, 1)
    assert torch.equal(same[1]["a"], torch.from_numpy(original).float() / 127.5 - 1.0)
    small = build_dataset({"name": "image-folders", "folder": str(tmp_path), "size": 8})
    torch.manual_seed(0)
    items = [small[0]["a"] for _ in range(20)]
    resized = np.asarray(Image.open(tmp_path / "trainA" / "0.png").resize((8, 8), Image.BILINEAR))
    expected = torch.from_numpy(resized.transpose(2, 0, 1).copy()).float() / 127.5 - 1.0
    flips = [bool(torch.equal(x, expected.flip(-1))) for x in items]
    assert all(torch.equal(x, expected) or f for x, f in zip(items, flips)) and 0 < sum(flips) < 20
    with pytest.raises(ConfigError, match="split"):
        build_dataset({"name": "image-folders", "folder": str(tmp_path), "split": "val"})


def test_mnist_mnistm_items_are_padded_like_the_evaluation(data_root):
    from ganbench.data.idx import load_mnist

    dataset = build_dataset({"name": "mnist-mnistm", "split": "test", "root": str(data_root)})
    digits, labels = load_mnist("mnist", "test", str(data_root))
    item = dataset[7]
    a = item["a"]
    assert a.shape == (3, 32, 32) and item["b"].shape == (3, 32, 32) and item["label_a"] == int(labels[7])
    inside = digits[7].float() / 127.5 - 1.0
    assert torch.equal(a[0, :28, :28], inside) and torch.equal(a[1], a[0])
    assert torch.equal(a[0, 28:, :28], inside[[26, 25, 24, 23]])  # reflected at the bottom
    assert torch.equal(a[0, :28, 28:], inside[:, [26, 25, 24, 23]])  # and at the right


def test_crop_data_sets(small_root):
    sr = build_dataset({"name": "sr-crops", "root": str(small_root), "crop_size": 48})
    item = sr[3]
    assert item["lr"].shape == (3, 12, 12) and item["hr"].shape == (3, 48, 48) and len(sr) == 6
    assert 0.0 <= float(item["lr"].min()) and float(item["lr"].max()) <= 1.0
    assert -1.0 <= float(item["hr"].min()) and float(item["hr"].max()) <= 1.0
    blur = build_dataset({"name": "motion-blur", "root": str(small_root), "crop_size": 32, "repeats": 2})
    item = blur[7]
    assert len(blur) == 12 and item["blurred"].shape == item["sharp"].shape == (3, 32, 32)
    # Blur smooths: the blurred crop varies less between neighbouring pixels than the sharp one.
    def roughness(x):
        return float((x[..., 1:] - x[..., :-1]).abs().mean())

    assert roughness(item["blurred"]) < roughness(item["sharp"])
    with pytest.raises(ConfigError, match="does not take option"):
        build_dataset({"name": "sr-crops", "size": 3})
