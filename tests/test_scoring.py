"""Scoring: every accepted checkpoint form loads to the same generator, pickled code is refused without being
run, samples and built-ins, seeds, the result table and JSON, and the ``ganbench score`` command."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import ganbench.cli as cli
from ganbench.data.sample import load_embedded_sample
from ganbench.errors import CheckpointError, DataNotFoundError
from ganbench.generators import Generator, SampleSet, load_source, save_torchscript
from ganbench.scoring import score, seeds_for
from ganbench.tasks import features as task_features
from ganbench.tasks import get_task
from reference_models.config import load_config
from reference_models.engine import Trainer

SMALL = {
    "n": 100,
    "reference": "embedded",
    "inception": False,
    "kid_subsets": 2,
    "kid_subset_size": 50,
    "spread_subsets": 2,
    "batch_size": 50,
}
SMALL_ARGS = [
    f"--set={k}={json.dumps(v) if isinstance(v, str) else str(v).lower()}" for k, v in SMALL.items()
]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, single_thread):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    task_features._MEMORY.clear()
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + ("score", "run", "compare")))
    )


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    """A reference_models checkpoint of the tiny DCGAN (initial weights; what matters is the format)."""
    folder = tmp_path_factory.mktemp("run")
    trainer = Trainer(load_config("dcgan", "tiny"), folder / "dcgan", progress=False)
    trainer.save_checkpoint({})
    return folder / "dcgan", trainer.model.eval()


def reference_images(model, n=8, seed=5):
    """What the reference model's own sampling gives for latents of ``seed``."""
    z = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        return model.generate(model.latent(n, z))


def test_reference_checkpoint_forms_give_the_model(dcgan_run):
    folder, model = dcgan_run
    expected = ((reference_images(model).clamp(-1, 1).double() + 1) * 127.5).round().to(torch.uint8)
    record = next((folder / "checkpoints").glob("step_*.json"))
    for spec in (folder, folder / "checkpoints", record, record.with_suffix(".safetensors")):
        generator = load_source(spec)
        assert generator.kind == "noise" and generator.latent_dim == 100 and generator.noise == "uniform"
        assert torch.equal(generator.sample(8, seed=5), expected)
        assert generator.source["format"] == "reference_models"


def test_state_dict_with_arch_all_file_forms(dcgan_run, tmp_path):
    folder, model = dcgan_run
    expected = load_source(folder).sample(8, seed=5)
    torch.save(model.G.state_dict(), tmp_path / "g.pt")
    torch.save(
        {f"G.{k}": v for k, v in model.G.state_dict().items()} | {"D.net.x": torch.zeros(1)},
        tmp_path / "task.pth",
    )
    save_file({k: v.contiguous() for k, v in model.G.state_dict().items()}, tmp_path / "g.safetensors")
    for name in ("g.pt", "task.pth", "g.safetensors"):
        generator = load_source(tmp_path / name, arch="dcgan:tiny")
        assert torch.equal(generator.sample(8, seed=5), expected), name
    with pytest.raises(CheckpointError, match="--arch"):
        load_source(tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="do not fit dcgan:paper"):
        load_source(tmp_path / "g.pt", arch="dcgan")  # paper width 64, weights of width 8


def test_torchscript_with_embedded_conventions(dcgan_run, tmp_path):
    _, model = dcgan_run
    path = save_torchscript(
        model.G,
        tmp_path / "g.ts",
        example_inputs=(torch.zeros(2, 100),),
        kind="noise",
        latent_dim=100,
        noise="uniform",
    )
    generator = load_source(path)
    assert generator.source["format"] == "torchscript"
    assert torch.equal(generator.sample(8, seed=5), load_source(dcgan_run[0]).sample(8, seed=5))
    bare = tmp_path / "bare.pt"
    torch.jit.save(torch.jit.trace(model.G, torch.zeros(2, 100)), bare)
    with pytest.raises(CheckpointError, match="--kind"):
        load_source(bare)
    assert (
        load_source(bare, conventions={"kind": "noise", "latent_dim": 100, "noise": "uniform"}).latent_dim
        == 100
    )


class Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"weight": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"weight": Payload(marker)}))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="never unpickles code"):
        load_source(path, arch="dcgan")
    assert not marker.exists()
    # through the command line: a clean error (exit 2), nothing executed
    assert cli.main(["score", str(path), "--task", "mnist", "--arch", "dcgan", "--quiet"]) == 2
    assert not marker.exists()


def test_samples_npz_folder_and_builtins(tmp_path):
    images, labels = load_embedded_sample()
    np.savez(tmp_path / "s.npz", images=images[:30].numpy(), labels=labels[:30].numpy())
    samples = load_source(tmp_path / "s.npz")
    assert isinstance(samples, SampleSet) and len(samples) == 30 and torch.equal(samples.labels, labels[:30])
    (tmp_path / "folder").mkdir()
    for i in range(3):
        Image.fromarray(images[i].numpy()).save(tmp_path / "folder" / f"{i}.png")
    assert torch.equal(load_source(tmp_path / "folder").images[:, 0], images[:3])
    assert load_source("builtin:bicubic").kind == "image"
    untrained = load_source("builtin:untrained:gan:tiny")
    assert untrained.kind == "noise" and untrained.source["step"] == 0
    assert torch.equal(
        untrained.sample(4, 1), load_source("builtin:untrained:gan:tiny").sample(4, 1)
    )  # seeded init
    with pytest.raises(CheckpointError, match="unknown built-in"):
        load_source("builtin:nothing")
    with pytest.raises(CheckpointError, match="held-out"):
        load_source("builtin:real-data")
    with pytest.raises(DataNotFoundError):
        load_source(tmp_path / "absent.pt")


def test_image_generator_pads_to_its_multiple_and_crops_back():
    seen = []

    def double(x):
        seen.append(tuple(x.shape))
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    generator = Generator(
        "up2", "image", double, input_range=(0.0, 255.0), output_range=(0.0, 255.0), multiple=16
    )
    x = torch.randint(0, 256, (2, 3, 28, 30), dtype=torch.uint8)
    out = generator.translate(x)
    assert seen == [(2, 3, 32, 32)] and out.shape == (2, 3, 56, 60)
    assert torch.equal(out, x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_seeds_and_result_formats():
    task = get_task("mnist", **SMALL)
    generator = load_source("builtin:untrained:gan:tiny")
    assert seeds_for(task, generator, [0, 1, 1]) == [0, 1]
    assert seeds_for(task, SampleSet(torch.zeros(100, 1, 28, 28, dtype=torch.uint8)), [0, 1]) == [0]
    assert seeds_for(get_task("sr-x4"), generator, [3, 4]) == [3]
    result = score(
        generator,
        task,
        seeds=[0, 1],
        progress=False,
        latency=True,
        batch_sizes=(1, 4),
        warmup=0,
        repeats=2,
        min_time_s=0.0,
    )
    assert result.metrics["fid"].method == "seeds(2)" and result.metrics["fid"].value > 50
    assert result.latency["parameters"] == generator.num_parameters()
    table = result.format_table()
    assert "fid" in table and "95% interval" in table and "batch 4" in table
    data = json.loads(json.dumps(result.to_dict()))
    assert data["metrics"]["fid"]["higher_is_better"] is False and data["seeds"] == [0, 1]


def test_score_command_json(capsys):
    assert cli.main(["score", "builtin:real-data", "--task", "mnist", *SMALL_ARGS, "--json", "--quiet"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "mnist" and data["counts"] == {"n_real": 1000, "n_fake": 100}
    assert (
        0 < data["metrics"]["fid"]["value"] < 50
        and data["metrics"]["fid"]["low"] <= data["metrics"]["fid"]["value"]
    )
    assert cli.main(["score", "builtin:real-data", "--task", "mnist", "--set", "n=oops"]) == 2


def test_score_command_inception_options(capsys, monkeypatch):
    """--inception-samples and --no-inception reach the task; the Inception is a stand-in here (the 128-d
    MNIST classifier: the plumbing is under test, tests/test_tasks.py has the real network)."""
    from ganbench.features import get_feature_extractor
    from ganbench.tasks import generation

    monkeypatch.setattr(generation, "inception_available", lambda weights="": True)
    monkeypatch.setattr(generation, "feature_extractor", lambda name, *a: get_feature_extractor("mnist"))
    small = [arg for arg in SMALL_ARGS if "inception" not in arg]  # inception: "auto", the default
    args = ["score", "builtin:real-data", "--task", "mnist", *small, "--json", "--quiet"]
    assert cli.main([*args, "--inception-samples", "30"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task_options"]["inception"] == "auto" and data["task_options"]["inception_samples"] == 30
    assert data["metrics"]["fid_inception"]["n"] == 30 and data["counts"]["n_inception"] == 30
    assert data["metrics"]["fid"]["n"] == 100  # the domain metrics keep n
    assert cli.main([*args, "--no-inception"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "fid_inception" not in data["metrics"] and data["task_options"]["inception"] is False
    assert cli.main(["score", "builtin:bicubic", "--task", "sr-x4", "--inception-samples", "5"]) == 2
    assert "sr-x4 has no Inception sample" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, options, low, scale, reverse",
    [
        ("srresnet", {"features": 8, "num_blocks": 1}, 0.0, 4, False),
        ("deblurgan", {"ngf": 4, "ndf": 4, "num_blocks": 1, "content": "pixel-l1"}, -1.0, 1, False),
        ("cyclegan", {"gf": 4, "df": 4}, -1.0, 1, True),
    ],
)
def test_reference_image_models_get_their_value_ranges(name, options, low, scale, reverse):
    from ganbench.generators import generator_from_model
    from reference_models.config import resolve
    from reference_models.registry import build

    table = {
        "model": {"name": name, **options},
        "data": {"name": "embedded"},
        "optim": {"G": {"name": "adam"}},
    }
    generator = generator_from_model(build(resolve(table)), name, {})
    seen = []
    generator.module.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].min(), args[0].max()))
    )
    images = torch.zeros(2, 3, 28, 28, dtype=torch.uint8)
    images[:, :, :2] = 255
    out = generator.translate(images)
    assert out.shape == (2, 3, 28 * scale, 28 * scale) and out.dtype == torch.uint8
    assert seen == [(low, 1.0)]  # 0 -> low, 255 -> 1
    assert (generator.reverse is not None) == reverse
