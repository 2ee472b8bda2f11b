"""VGG feature stacks (torchvision layout) and the perceptual distance / loss."""

from urllib.error import URLError

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganbench.errors import (
    ImageRangeError,
    ImageSizeMismatchError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from ganbench.features import vgg as V
from ganbench.features import weights as W
from ganbench.metrics.perceptual import PerceptualLoss, perceptual_distance

# Facts from torchvision's vgg.py (cfgs "D" and "E", make_layers): Conv2d at these `features` indices,
# each followed by ReLU; MaxPool2d after each block; len(vgg16().features) == 31, vgg19: 37.
TORCHVISION_CONV_INDICES = {
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
}
TORCHVISION_CONFIG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No VGG weights anywhere: empty caches, no environment variables."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in W.WEIGHT_NAMES:
        monkeypatch.delenv(W.weights_env_var(name), raising=False)
    return tmp_path


def torchvision_style_state(arch: str, seed: int = 0, upto: int = 99) -> dict[str, torch.Tensor]:
    """A random torchvision-keyed VGG state dict (convs up to index ``upto``) with a fake classifier."""
    generator = torch.Generator().manual_seed(seed)
    state, in_channels, index = {}, 3, 0
    for item in TORCHVISION_CONFIG[arch]:
        if index > upto:
            break
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, in_channels, 3, 3, generator=generator) * 0.05
        state[f"features.{index}.bias"] = torch.randn(item, generator=generator) * 0.01
        in_channels, index = item, index + 2
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def reference_distance(
    state: dict, arch: str, last_index: int, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Independent float64 forward through torchvision's layer sequence; per-image feature MSE."""
    ops = []  # torchvision's `features`, one entry per index
    for item in TORCHVISION_CONFIG[arch]:
        if item == "M":
            ops.append(lambda x: F.max_pool2d(x, 2))
        else:
            i = len(ops)
            ops.append(
                lambda x, i=i: F.conv2d(
                    x, state[f"features.{i}.weight"].double(), state[f"features.{i}.bias"].double(), padding=1
                )
            )
            ops.append(F.relu)

    def features(x):
        x = (x.double() - IMAGENET_MEAN) / IMAGENET_STD
        for op in ops[: last_index + 1]:
            x = op(x)
        return x

    return (features(a) - features(b)).pow(2).flatten(1).mean(1)


def test_layer_indices_match_torchvision():
    assert V.parse_network("vgg16_relu3_3") == ("vgg16", 15)
    assert V.parse_network("vgg19_relu5_4") == ("vgg19", 35)
    assert V.parse_network("vgg19_conv3_3") == ("vgg19", 14)
    assert len(V.layer_names("vgg16")) == 31 and len(V.layer_names("vgg19")) == 37
    for arch, indices in TORCHVISION_CONV_INDICES.items():
        names = V.layer_names(arch)
        assert [i for i, name in enumerate(names) if name.startswith("conv")] == indices
        assert all(names[i + 1].startswith("relu") for i in indices)
    with pytest.raises(ValueError, match="vgg16_relu3_3"):
        V.parse_network("vgg16_relu6_1")


def test_state_dict_keys_match_torchvision():
    for arch, indices in TORCHVISION_CONV_INDICES.items():
        model = V.VGGFeatures(arch, len(V.layer_names(arch)) - 1)
        state = model.state_dict()
        assert sorted(state) == sorted(f"features.{i}.{p}" for i in indices for p in ("weight", "bias"))
        assert state["features.0.weight"].shape == (64, 3, 3, 3)
        assert state[f"features.{indices[-1]}.weight"].shape == (512, 512, 3, 3)
    cut = V.VGGFeatures("vgg16", 15)
    assert len(cut.features) == 16 and isinstance(cut.features[15], torch.nn.ReLU)
    assert isinstance(cut.features[14], torch.nn.Conv2d)


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "bare_features"])
def test_loads_torchvision_keyed_weights(tmp_path, fmt):
    state = torchvision_style_state("vgg16", upto=15)
    if fmt == "pth":
        path = tmp_path / "vgg16.pth"
        torch.save(state, path)
    elif fmt == "safetensors":
        path = tmp_path / "vgg16.safetensors"
        save_file(state, str(path))
    else:
        path = tmp_path / "vgg16_features.pth"
        torch.save({k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}, path)
    model = V.load_vgg_features("vgg16_relu3_3", path)
    assert len(model.features) == 16
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(p.requires_grad for p in model.parameters())


def test_mismatched_weights_are_refused(tmp_path):
    state = torchvision_style_state("vgg16", upto=21)
    path = tmp_path / "vgg19_named_but_vgg16.pth"
    torch.save(state, path)
    with pytest.raises(WeightsIntegrityError, match="does not fit torchvision's vgg19"):
        V.load_vgg_features("vgg19_relu5_4", path)
    del state["features.12.bias"]
    torch.save(state, path)
    with pytest.raises(WeightsIntegrityError, match="features.12.bias"):
        V.load_vgg_features("vgg16_relu3_3", path)
    path.write_bytes(b"garbage")
    with pytest.raises(WeightsIntegrityError, match="cannot read"):
        V.load_vgg_features("vgg16_relu3_3", path)


@pytest.mark.parametrize(
    "network, weights", [("vgg16_relu3_3", "file"), ("vgg19_conv3_3", "file"), ("vgg19_relu5_4", "random")]
)
def test_distance_equals_independent_float64_computation(network, weights, tmp_path):
    arch, last_index = V.parse_network(network)
    if weights == "file":
        state = torchvision_style_state(arch, seed=3, upto=last_index)
        weights = tmp_path / f"{arch}.pth"
        torch.save(state, weights)
    else:
        state = V.load_vgg_features(network, "random").state_dict()
    generator = torch.Generator().manual_seed(4)
    a, b = torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 32, 32, generator=generator)
    got = perceptual_distance(a, b, network=network, weights=weights, reduction="none")
    expected = reference_distance(state, arch, last_index, a, b)
    assert got.shape == (2,) and torch.all(expected > 0)
    torch.testing.assert_close(got.double(), expected, rtol=2e-4, atol=0)
    assert torch.isclose(perceptual_distance(a, b, network=network, weights=weights), got.mean())


def test_random_weights_only_when_asked_and_seeded(no_weights):
    generator = torch.Generator().manual_seed(5)
    a, b = torch.rand(1, 3, 24, 24, generator=generator), torch.rand(1, 3, 24, 24, generator=generator)
    with pytest.raises(WeightsNotFoundError, match="ganbench weights fetch vgg16"):
        perceptual_distance(a, b)
    with pytest.raises(WeightsNotFoundError, match="ganbench weights fetch vgg19"):
        PerceptualLoss("vgg19_relu5_4")
    first = V.load_vgg_features("vgg16_relu3_3", "random").state_dict()
    second = V.load_vgg_features("vgg16_relu3_3", "random").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # torchvision's init: Kaiming normal with fan_out -> std sqrt(2 / (out_channels * 9))
    assert (
        abs(float(first["features.14.weight"].std()) - (2 / (256 * 9)) ** 0.5) < 0.02 * (2 / (256 * 9)) ** 0.5
    )
    assert float(perceptual_distance(a, b, weights="random")) > 0


def test_default_lookup_checks_torchvision_file_hash(no_weights, monkeypatch):
    hub = no_weights / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(torchvision_style_state("vgg16", upto=15), hub / "vgg16-397923af.pth")
    with pytest.raises(WeightsIntegrityError, match="397923af"):
        V.load_vgg_features("vgg16_relu3_3")
    own = no_weights / "my_vgg16.pth"
    torch.save(torchvision_style_state("vgg16", upto=15), own)
    monkeypatch.setenv("GANBENCH_VGG16_WEIGHTS", str(own))
    assert len(V.load_vgg_features("vgg16_relu3_3").features) == 16


def test_download_uses_torch_hub_with_hash_check(no_weights, monkeypatch):
    calls = []

    def fake_download(url, **kwargs):
        calls.append((url, kwargs))
        return {}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    path = V.download_vgg_weights("vgg19", progress=False)
    assert path == no_weights / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    ((url, kwargs),) = calls
    assert url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert kwargs["check_hash"] and kwargs["weights_only"] and kwargs["file_name"] == "vgg19-dcbb9e9d.pth"

    def offline(url, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsNotFoundError, match="without internet"):
        V.download_vgg_weights("vgg16", progress=False)


def test_range_shape_and_scale_conventions():
    generator = torch.Generator().manual_seed(6)
    a, b = torch.rand(2, 3, 24, 24, generator=generator), torch.rand(2, 3, 24, 24, generator=generator)
    base = perceptual_distance(a, b, weights="random", reduction="none")
    assert torch.equal(perceptual_distance(a, a, weights="random", reduction="none"), torch.zeros(2))
    with pytest.raises(ImageRangeError, match="data_range"):
        perceptual_distance(a * 2 - 1, b, weights="random")
    with pytest.raises(ImageSizeMismatchError):
        perceptual_distance(a, b[:, :, :20], weights="random")
    as_uint8 = perceptual_distance((a * 255).round(), (b * 255).round(), weights="random", data_range=255)
    assert abs(float(as_uint8) - float(base.mean())) < 0.02 * float(base.mean())
    srgan_scaled = perceptual_distance(a, b, weights="random", reduction="none", feature_scale=1 / 12.75)
    torch.testing.assert_close(srgan_scaled, base / 12.75**2, rtol=1e-5, atol=0)
    gray_a, gray_b = a[:, :1], b[:, :1]
    torch.testing.assert_close(
        perceptual_distance(gray_a, gray_b, weights="random"),
        perceptual_distance(gray_a.expand(-1, 3, -1, -1), gray_b.expand(-1, 3, -1, -1), weights="random"),
    )


def test_loss_module_matches_metric_and_trains_preds_only():
    generator = torch.Generator().manual_seed(7)
    preds = torch.rand(2, 3, 24, 24, generator=generator).requires_grad_(True)
    target = torch.rand(2, 3, 24, 24, generator=generator).requires_grad_(True)
    loss_fn = PerceptualLoss("vgg16_relu3_3", weights="random")
    loss = loss_fn(preds, target)
    torch.testing.assert_close(
        loss.detach(), perceptual_distance(preds.detach(), target.detach(), weights="random")
    )
    loss.backward()
    assert preds.grad is not None and preds.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None for p in loss_fn.parameters())
    assert PerceptualLoss(weights="random", reduction="none")(preds, target).shape == (2,)
