"""VGG16/VGG19 convolutional stacks with torchvision's layer indices and state-dict keys.

:class:`VGGFeatures` is torchvision's ``vgg16().features`` / ``vgg19().features`` cut after a named
layer: ``features.N`` is the same layer as in torchvision and the weights are ``features.N.weight`` /
``features.N.bias``, so torchvision's ImageNet checkpoints (``vgg16-397923af.pth``,
``vgg19-dcbb9e9d.pth``) load unchanged. Layers are named ``conv{block}_{i}``, ``relu{block}_{i}`` and
``pool{block}`` (``relu3_3`` of VGG16 is ``features[15]``, ``relu5_4`` of VGG19 is ``features[35]``).

Weights (:func:`load_vgg_features`): a path (torch state dict read with ``weights_only=True``, or
``.safetensors``); ``None`` for the default lookup (``$GANBENCH_VGG16_WEIGHTS`` / ``..._VGG19_...``,
ganbench's cache, then torch hub's cache ``$TORCH_HOME/hub/checkpoints``); or ``"random"`` for a seeded
random initialisation (tests only: random features are not a perceptual distance).
"""

import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from ganbench.errors import WeightsIntegrityError, WeightsNotFoundError
from ganbench.features.weights import (
    VGG_CHECKPOINTS,
    cached_sha256,
    find_weights,
    torch_hub_checkpoint_dir,
    weights_env_var,
)

# torchvision's configurations "D" (VGG16) and "E" (VGG19): conv widths, "M" = 2x2 max pool.
VGG_CONFIGS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (
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
    ),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of ``features[0], features[1], ...`` of torchvision's ``arch`` (``vgg16`` or ``vgg19``)."""
    if arch not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG {arch!r}; choose from {', '.join(VGG_CONFIGS)}")
    names, block, conv = [], 1, 0
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def parse_network(network: str) -> tuple[str, int]:
    """Split ``"vgg16_relu3_3"`` into the architecture and the index of the layer in ``features``."""
    arch, _, layer = network.partition("_")
    names = layer_names(arch) if arch in VGG_CONFIGS else []
    if layer not in names:
        raise ValueError(
            f"unknown network {network!r}: expected vgg16_<layer> or vgg19_<layer> with a layer such as "
            "relu3_3, conv3_3 or relu5_4 (e.g. vgg16_relu3_3, vgg19_relu5_4)"
        )
    return arch, names.index(layer)


class VGGFeatures(nn.Module):
    """torchvision's VGG ``features`` up to and including ``features[last_index]``."""

    def __init__(self, arch: str, last_index: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in VGG_CONFIGS[arch]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = item
        self.arch = arch
        self.features = nn.Sequential(*layers[: last_index + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps of ImageNet-normalised ``(N, 3, H, W)`` input."""
        return self.features(x)


def load_vgg_features(network: str = "vgg16_relu3_3", weights=None, seed: int = 0) -> VGGFeatures:
    """Build :class:`VGGFeatures` for ``network`` (e.g. ``vgg16_relu3_3``) with frozen weights.

    ``weights``: a file path, ``None`` (default lookup, see the module docstring) or ``"random"``
    (seeded with ``seed``; only when asked for explicitly). Raises :class:`WeightsNotFoundError` when no
    weights are found and :class:`WeightsIntegrityError` when they do not fit.
    """
    arch, last_index = parse_network(network)
    model = VGGFeatures(arch, last_index)
    if isinstance(weights, str) and weights == "random":
        _init_random(model, seed)
    else:
        path = default_vgg_weights(arch) if weights is None else Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"VGG weights {str(path)!r} do not exist; {vgg_fetch_hint(arch)}")
        _load_features(model, read_state_dict(path), path)
    return model.eval().requires_grad_(False)


def default_vgg_weights(arch: str) -> Path:
    """The default ImageNet weights of ``arch``, hash-checked when they carry torchvision's file name."""
    path = find_weights(arch)
    if path is None:
        raise WeightsNotFoundError(f"no ImageNet {arch} weights found; {vgg_fetch_hint(arch)}")
    filename = VGG_CHECKPOINTS[arch][0]
    if path.name == filename:
        expected_prefix = filename.rsplit("-", 1)[1].split(".")[0]
        if not cached_sha256(path).startswith(expected_prefix):
            raise WeightsIntegrityError(
                f"{path}: sha256 does not start with {expected_prefix} as torchvision's {filename} does "
                "(truncated or a different file); delete it and fetch again"
            )
    return path


def vgg_fetch_hint(arch: str) -> str:
    """How to get the ImageNet weights of ``arch``."""
    filename = VGG_CHECKPOINTS[arch][0]
    return (
        f"run `ganbench weights fetch {arch}` (downloads torchvision's {filename}), copy {filename} into "
        f"{torch_hub_checkpoint_dir()}, set {weights_env_var(arch)}=/path/to/{filename}, or pass "
        "weights=PATH (weights='random' gives untrained features, for tests only)"
    )


def download_vgg_weights(arch: str, progress: bool = True) -> Path:
    """Download torchvision's ImageNet ``arch`` checkpoint into torch hub's cache (hash-checked)."""
    filename, url = VGG_CHECKPOINTS[arch]
    directory = torch_hub_checkpoint_dir()
    try:
        torch.hub.load_state_dict_from_url(
            url,
            model_dir=str(directory),
            progress=progress,
            check_hash=True,
            file_name=filename,
            weights_only=True,
        )
    except (URLError, OSError) as exc:
        raise WeightsNotFoundError(
            f"could not download {url} ({exc}); without internet copy {filename} into {directory}"
        ) from None
    except RuntimeError as exc:  # torch.hub's hash mismatch
        raise WeightsIntegrityError(f"download of {url} failed its check: {exc}") from None
    return directory / filename


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``, never plain pickle)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state_dict = load_file(str(path))
        else:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsIntegrityError(f"cannot read weights {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state_dict, dict):
        raise WeightsIntegrityError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    return state_dict


def _load_features(model: VGGFeatures, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Copy the ``features.N.*`` entries the cut model needs, checking names and shapes."""
    if not any(key.startswith("features.") for key in state_dict):
        state_dict = {f"features.{key}": value for key, value in state_dict.items()}  # a bare `features` dict
    wanted = model.state_dict()
    missing = [key for key in wanted if key not in state_dict]
    misshaped = [
        f"{key}: {tuple(state_dict[key].shape)} != {tuple(shape.shape)}"
        for key, shape in wanted.items()
        if key in state_dict and state_dict[key].shape != shape.shape
    ]
    if missing or misshaped:
        raise WeightsIntegrityError(
            f"{path} does not fit torchvision's {model.arch} (cut at features[{len(model.features) - 1}]): "
            f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}, wrong shape {misshaped[:4]}"
        )
    model.load_state_dict({key: state_dict[key].float() for key in wanted})


def _init_random(model: VGGFeatures, seed: int) -> None:
    """torchvision's VGG initialisation (Kaiming normal, fan-out; zero bias) from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            nn.init.zeros_(layer.bias)
