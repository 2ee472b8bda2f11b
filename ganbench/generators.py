"""What gets scored: a generator loaded from any accepted form, or ready samples.

:func:`load_source` accepts

* a **reference_models checkpoint**: a record ``step_*.json``, its ``.safetensors``, a ``checkpoints/``
  folder or a run folder (its latest checkpoint); the model and its config come from the record;
* a **TorchScript generator** (a ``torch.jit.save`` archive); how to call it (kind, latent size, value
  ranges) comes from a ``ganbench.json`` file inside the archive (:func:`save_torchscript` writes one)
  or from the ``conventions`` argument;
* a **plain state dict** (``torch.save(model.state_dict())`` or a ``.safetensors`` file without a
  record) with ``arch="MODEL[:CONFIG]"``: a reference_models model built from its config (default
  ``paper``); keys may be the generator's own or the whole model's (``G.``-prefixed);
* **ready samples**: an ``.npz`` of ``uint8`` images (``images``/``x``, optional ``labels``/``y``) or an
  image folder; paired tasks read a folder with one sub-folder per test set, files named as the inputs;
* **built-ins**: ``builtin:bicubic`` (MATLAB-bicubic x4 upscaling, the SR baseline),
  ``builtin:real-data`` (the task's held-out real images, the ceiling of generation tasks) and
  ``builtin:untrained:MODEL[:CONFIG]`` (a reference model at its seeded initialisation, step 0: the
  floor, and a network to time before any training).

Nothing is ever unpickled: tensors come from safetensors, TorchScript archives or
``torch.load(weights_only=True)``, which refuses pickled code (:class:`CheckpointError`, nothing run).

A :class:`Generator` is called in one of three ways (:data:`GENERATOR_KINDS`): ``noise`` (``G(z)``),
``conditional`` (``G(z, labels)``) or ``image`` (``G(x)``: super-resolution, deblurring, translation).
It maps ``uint8`` images to and from its value ranges, so tasks only see ``uint8`` ``(N, C, H, W)``.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from ganbench.checks import as_uint8_batch, to_uint8
from ganbench.data.images import IMAGE_EXTENSIONS, load_images, read_image
from ganbench.errors import CheckpointError, ConfigError, CorruptFileError, DataNotFoundError, ImageShapeError
from ganbench.files import atomic_path, is_torchscript
from ganbench.imresize import imresize

__all__ = [
    "GENERATOR_KINDS",
    "NOISE_KINDS",
    "IMAGE_MODELS",
    "Generator",
    "SampleSet",
    "load_source",
    "save_torchscript",
    "bicubic_generator",
]

GENERATOR_KINDS = ("noise", "conditional", "image")
NOISE_KINDS = ("normal", "uniform")
BUILTIN_PREFIX = "builtin:"
BUILTINS = ("bicubic", "real-data", "untrained:MODEL[:CONFIG]")
TORCHSCRIPT_INFO = "ganbench.json"  # extra file of a TorchScript archive holding its conventions
CONVENTION_KEYS = (
    "kind",
    "latent_dim",
    "noise",
    "num_classes",
    "input_range",
    "output_range",
    "channels",
    "multiple",
)


@dataclass(frozen=True)
class ImageModelSpec:
    """How to call an image-to-image reference model: the model attribute holding the network, its value
    ranges, the input channels, the multiple its sides must be, and the reverse network if any."""

    attribute: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    channels: int
    multiple: int
    reverse: str | None = None


# The image-to-image models of reference_models, by registered model name (conventions from their
# modules: SRResNet takes [0, 1] and returns [-1, 1]; DeblurGAN and CycleGAN work in [-1, 1]; CycleGAN's
# MNIST <-> MNIST-M data are reflect-padded bottom/right from 28 to 32 pixels, as Generator pads).
IMAGE_MODELS = {
    "srresnet": ImageModelSpec("G", (0.0, 1.0), (-1.0, 1.0), 3, 1),
    "srgan": ImageModelSpec("G", (0.0, 1.0), (-1.0, 1.0), 3, 1),
    "deblurgan": ImageModelSpec("G", (-1.0, 1.0), (-1.0, 1.0), 3, 4),
    "cyclegan": ImageModelSpec("G_AB", (-1.0, 1.0), (-1.0, 1.0), 3, 16, reverse="G_BA"),
}


def _float_range(value, what: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise CheckpointError(f"{what} must be a pair (low, high), got {value!r}") from None
    if not low < high:
        raise CheckpointError(f"{what} must have low < high, got {value!r}")
    return low, high


@dataclass
class Generator:
    """A network (or function) to score, with the conventions needed to call it.

    Attributes:
        name: a label (model name or file name).
        kind: ``noise``, ``conditional`` or ``image``.
        forward: the call: ``forward(z)``, ``forward(z, labels)`` or ``forward(x)``.
        module: the ``nn.Module`` behind ``forward`` (parameters, device moves), or None.
        latent_dim, noise: size and distribution (``normal`` N(0, 1), ``uniform`` U(-1, 1)) of ``z``.
        num_classes: classes of a conditional generator.
        input_range: value range of an image generator's input (``uint8`` 0..255 is mapped onto it).
        output_range: value range of the output (mapped back to ``uint8``; values outside are clipped).
        channels: input channels an image generator needs (0: any); grayscale is repeated to 3.
        multiple: image sides must be multiples of this; inputs are reflect-padded bottom/right and the
            output cropped back.
        reverse: the opposite direction of a translation model (CycleGAN's ``G_BA``), or None.
        source: where it came from (format, path, model, step...), for metadata.
    """

    name: str
    kind: str
    forward: Callable[..., torch.Tensor]
    module: nn.Module | None = None
    latent_dim: int = 0
    noise: str = "normal"
    num_classes: int = 0
    input_range: tuple[float, float] = (-1.0, 1.0)
    output_range: tuple[float, float] = (-1.0, 1.0)
    channels: int = 0
    multiple: int = 1
    reverse: Generator | None = None
    source: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if self.kind not in GENERATOR_KINDS:
            raise CheckpointError(f"generator kind must be one of {GENERATOR_KINDS}, got {self.kind!r}")
        if self.kind != "image" and (not isinstance(self.latent_dim, int) or self.latent_dim < 1):
            raise CheckpointError(f"a {self.kind} generator needs latent_dim >= 1, got {self.latent_dim!r}")
        if self.kind != "image" and self.noise not in NOISE_KINDS:
            raise CheckpointError(f"noise must be one of {NOISE_KINDS}, got {self.noise!r}")
        if self.kind == "conditional" and (not isinstance(self.num_classes, int) or self.num_classes < 2):
            raise CheckpointError(f"a conditional generator needs num_classes >= 2, got {self.num_classes!r}")
        self.input_range = _float_range(self.input_range, "input_range")
        self.output_range = _float_range(self.output_range, "output_range")
        if self.multiple < 1 or self.channels not in (0, 1, 3):
            raise CheckpointError(
                f"multiple must be >= 1 and channels 0, 1 or 3, got {self.multiple}, {self.channels}"
            )

    # ------------------------------------------------------------------------------------------ basics

    def to(self, device: str | torch.device) -> Generator:
        """Move the network (and the reverse one) to ``device``; returns self."""
        self.device = torch.device(device)
        if self.module is not None:
            self.module.to(self.device)
        if self.reverse is not None:
            self.reverse.to(self.device)
        return self

    def num_parameters(self) -> int:
        """Number of parameters of the network (0 for a plain function)."""
        return 0 if self.module is None else sum(p.numel() for p in self.module.parameters())

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The raw call on inputs already on the device (what latency measures)."""
        return self.forward(*inputs)

    def latent(self, n: int, seed: int) -> torch.Tensor:
        """``n`` latent vectors drawn on the CPU from ``seed`` (the same on every device)."""
        generator = torch.Generator().manual_seed(int(seed))
        if self.noise == "normal":
            return torch.randn(n, self.latent_dim, generator=generator)
        return torch.rand(n, self.latent_dim, generator=generator) * 2.0 - 1.0

    def example_inputs(self, batch_size: int, image_shape: tuple[int, int, int] = (3, 64, 64)) -> tuple:
        """Inputs of ``batch_size`` on the device: ``(z,)``, ``(z, labels)``, or ``(x,)`` of ``image_shape``
        (padded to :attr:`multiple`)."""
        if self.kind == "image":
            low, high = self.input_range
            x = torch.rand(batch_size, *image_shape, generator=torch.Generator().manual_seed(0))
            return (self._pad(x * (high - low) + low).to(self.device),)
        z = self.latent(batch_size, 0).to(self.device)
        if self.kind == "noise":
            return (z,)
        return z, (torch.arange(batch_size) % self.num_classes).to(self.device)

    def _to_uint8(self, output: torch.Tensor) -> torch.Tensor:
        low, high = self.output_range
        return to_uint8(
            output.detach().float().cpu().clamp(low, high), value_range=(low, high), name=self.name
        )

    # ---------------------------------------------------------------------------------------- sampling

    @torch.inference_mode()
    def sample(
        self,
        n: int,
        seed: int,
        labels: torch.Tensor | None = None,
        batch_size: int = 500,
        progress: bool = False,
    ) -> torch.Tensor:
        """``n`` images ``uint8 (n, C, H, W)`` from latents of ``seed`` (and ``labels`` if conditional)."""
        if self.kind == "image":
            raise CheckpointError(f"{self.name} translates images; it cannot sample from noise")
        if self.kind == "conditional":
            if labels is None or labels.shape != (n,):
                raise CheckpointError(f"{self.name} is conditional: sample() needs labels of shape ({n},)")
            labels = labels.to(torch.int64)
        z = self.latent(n, seed)
        chunks = []
        for start in tqdm(
            range(0, n, batch_size), desc=f"sampling {self.name}", disable=not progress, leave=False
        ):
            batch = [z[start : start + batch_size].to(self.device)]
            if self.kind == "conditional":
                batch.append(labels[start : start + batch_size].to(self.device))
            chunks.append(self._to_uint8(self.forward(*batch)))
        images = torch.cat(chunks)
        if images.ndim != 4 or images.shape[0] != n:
            raise CheckpointError(
                f"{self.name} returned shape {tuple(images.shape)}, expected ({n}, C, H, W)"
            )
        return images

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad the bottom/right of ``(N, C, H, W)`` to multiples of :attr:`multiple`."""
        pad_h, pad_w = (-x.shape[-2]) % self.multiple, (-x.shape[-1]) % self.multiple
        if not (pad_h or pad_w):
            return x
        return torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")

    @torch.inference_mode()
    def translate(self, images, batch_size: int = 16, progress: bool = False) -> torch.Tensor:
        """Run an image generator on ``uint8 (N, C, H, W)`` images; returns ``uint8`` outputs.

        Outputs of padded inputs are cropped back to ``scale * (H, W)``, ``scale`` being the ratio of
        output to (padded) input size (4 for x4 super-resolution, 1 otherwise).
        """
        if self.kind != "image":
            raise CheckpointError(f"{self.name} is a {self.kind} generator; it does not take images")
        x = as_uint8_batch(images)
        if self.channels and x.shape[1] != self.channels:
            if x.shape[1] == 1 and self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            else:
                raise ImageShapeError(f"{self.name} takes {self.channels}-channel images, got {x.shape[1]}")
        low, high = self.input_range
        height, width = x.shape[-2:]
        chunks = []
        for start in tqdm(
            range(0, len(x), batch_size), desc=f"running {self.name}", disable=not progress, leave=False
        ):
            batch = (
                x[start : start + batch_size].to(self.device, torch.float32) * ((high - low) / 255.0) + low
            )
            padded = self._pad(batch)
            output = self.forward(padded)
            scale = output.shape[-2] // padded.shape[-2]
            if output.ndim != 4 or scale < 1 or output.shape[-1] != scale * padded.shape[-1]:
                raise CheckpointError(
                    f"{self.name}: input {tuple(padded.shape)} gave output {tuple(output.shape)}, not an "
                    "integer multiple of the input size"
                )
            chunks.append(self._to_uint8(output[..., : scale * height, : scale * width]))
        return torch.cat(chunks)


class SampleSet:
    """Ready samples: ``uint8`` images (and labels) from an ``.npz`` or a folder, or given directly.

    For paired tasks a folder holds one sub-folder per test set, files named like the inputs:
    :meth:`named_image` reads them.
    """

    def __init__(
        self,
        images: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        path: str | os.PathLike | None = None,
        name: str = "samples",
        source: dict | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self._images = None if images is None else as_uint8_batch(images)
        self._labels = labels
        self.name = name
        self.source = source or {"format": "samples", "path": str(self.path) if self.path else None}
        if self._images is not None and labels is not None and len(labels) != len(self._images):
            raise ImageShapeError(f"{len(labels)} labels for {len(self._images)} images")

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> SampleSet:
        """Samples from an ``.npz`` (read now) or a folder (images read when first needed)."""
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"samples {str(path)!r} do not exist")
        if path.is_file():
            return cls(load_images(path), _npz_labels(path), path=path, name=path.stem)
        return cls(path=path, name=path.name)

    @property
    def images(self) -> torch.Tensor:
        """All images, ``uint8 (N, C, H, W)`` (a folder is read on first use)."""
        if self._images is None:
            if self.path is None:
                raise DataNotFoundError("this sample set holds no images")
            self._images = load_images(self.path)
        return self._images

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> torch.Tensor | None:
        """Class labels ``int64 (N,)`` when the samples came with them."""
        return self._labels

    def select(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples: a seeded random subset when there are more, else all of them, in order."""
        images, labels = self.images, self.labels
        if len(images) <= n:
            return images, labels
        index = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False)))
        return images[index], None if labels is None else labels[index]

    def named_image(self, subfolder: str, stem: str) -> torch.Tensor:
        """The image ``<folder>/<subfolder>/<stem>.<ext>`` (any image extension), ``uint8 (C, H, W)``."""
        if self.path is None or not self.path.is_dir():
            raise DataNotFoundError(
                f"paired samples must be a folder with one sub-folder per set; got {self.path}"
            )
        folder = self.path / subfolder
        for ext in IMAGE_EXTENSIONS:
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return read_image(candidate)
        raise DataNotFoundError(
            f"no output image {stem}.* ({', '.join(IMAGE_EXTENSIONS)}) in {str(folder)!r}"
        )


def _npz_labels(path: Path) -> torch.Tensor | None:
    """The ``labels`` (or ``y``) array of an ``.npz`` of samples, as int64, or None."""
    if path.suffix.lower() != ".npz":
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = next((k for k in ("labels", "y") if k in archive.files), None)
            labels = None if key is None else archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"cannot read npz file {str(path)!r}: {exc}") from None
    if labels is None:
        return None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise CorruptFileError(
            f"{path}[{key!r}]: labels must be a 1-d integer array, got {labels.dtype} {labels.shape}"
        )
    return torch.from_numpy(labels.astype(np.int64))


# ------------------------------------------------------------------------------------------- built-ins


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-bicubic upscaling of float images holding ``uint8`` values (0..255)."""
    return imresize(x.round().clamp(0, 255).to(torch.uint8).cpu(), float(scale)).to(x.device, torch.float32)


def bicubic_generator(scale: int = 4) -> Generator:
    """MATLAB-bicubic ``imresize`` by ``scale``: the baseline row of every super-resolution table."""
    return Generator(
        name="bicubic",
        kind="image",
        forward=lambda x: _bicubic(x, scale),
        input_range=(0.0, 255.0),
        output_range=(0.0, 255.0),
        source={"format": "builtin", "name": "bicubic", "scale": scale},
    )


# ------------------------------------------------------------------------------------------- loading


def load_source(
    spec: str | os.PathLike,
    *,
    arch: str | None = None,
    conventions: dict | None = None,
    task=None,
    device: str = "cpu",
) -> Generator | SampleSet:
    """Load what ``spec`` names (see the module docstring) as a :class:`Generator` or :class:`SampleSet`.

    Args:
        spec: a path, or ``builtin:bicubic`` / ``builtin:real-data``.
        arch: ``MODEL[:CONFIG]`` for a plain state dict (a reference_models model and config name).
        conventions: how to call a TorchScript generator (keys of :data:`CONVENTION_KEYS`), overriding
            its embedded ``ganbench.json``.
        task: the task (needed for ``builtin:real-data``).
        device: where the generator runs.
    """
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        return _builtin(text[len(BUILTIN_PREFIX) :], task, device)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"{text!r} does not exist (checkpoint, TorchScript file, state dict or samples)"
        )
    if path.is_dir():
        if (path / "checkpoints").is_dir() or any(path.glob("step_*.json")):
            return _from_reference_checkpoint(path).to(device)
        return SampleSet.from_path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return SampleSet.from_path(path)
    if suffix in IMAGE_EXTENSIONS:
        return SampleSet.from_path(path)
    if suffix == ".json" or (suffix == ".safetensors" and _is_reference_record(path.with_suffix(".json"))):
        return _from_reference_checkpoint(path).to(device)
    if suffix == ".safetensors":
        return _from_state_dict(_read_safetensors(path), arch, path).to(device)
    if is_torchscript(path):
        return _from_torchscript(path, conventions or {}).to(device)
    return _from_state_dict(_read_pickled_state_dict(path), arch, path).to(device)


def _builtin(name: str, task, device: str) -> Generator | SampleSet:
    if name == "bicubic":
        return bicubic_generator(4).to(device)
    if name == "real-data":
        holdout = None if task is None else task.holdout()
        if holdout is None:
            raise CheckpointError(
                f"task {getattr(task, 'name', None)!r} has no held-out real data for builtin:real-data"
            )
        return holdout
    if name.startswith("untrained:"):
        return _untrained(name[len("untrained:") :]).to(device)
    raise CheckpointError(f"unknown built-in {BUILTIN_PREFIX}{name} (built-ins: {', '.join(BUILTINS)})")


def _build_reference_model(arch: str):
    """Build reference_models model ``MODEL[:CONFIG]`` (config default ``paper``) at its seeded
    initialisation (the config's seed), without touching the caller's RNG.

    Returns ``(GANModel, model name, config name)``.
    """
    from reference_models.config import load_config
    from reference_models.registry import build

    model_name, _, config_name = arch.partition(":")
    config_name = config_name or "paper"
    try:
        config = load_config(model_name, config_name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["train"]["seed"])
            gan_model = build(config)
    except ConfigError as exc:
        raise CheckpointError(f"{arch}: {exc}") from None
    return gan_model, model_name, config_name


def _untrained(arch: str) -> Generator:
    gan_model, model_name, config_name = _build_reference_model(arch)
    source = {"format": "builtin", "name": f"untrained:{model_name}:{config_name}", "step": 0}
    return generator_from_model(gan_model, model_name, source)


def _is_reference_record(path: Path) -> bool:
    from reference_models.checkpoint import FORMAT

    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def _from_reference_checkpoint(path: Path) -> Generator:
    """The generator of a reference_models checkpoint (record, tensor file or run folder)."""
    from reference_models.engine import load_trained

    gan_model, record = load_trained(path)
    source = {
        "format": "reference_models",
        "path": str(path),
        "model": record["model"],
        "step": record["step"],
        "code_version": record.get("code_version"),
    }
    return generator_from_model(gan_model, record["model"], source)


def _is_noise_model(gan_model) -> bool:
    """Whether a reference model maps noise (and labels) to images (``NoiseToImageModel``)."""
    return hasattr(gan_model, "generate") and hasattr(gan_model, "latent_dim")


def _generator_attributes(gan_model, model_name: str) -> list[str]:
    """Names of the model's generator networks (the forward one first)."""
    if _is_noise_model(gan_model):
        return ["G"]
    spec = IMAGE_MODELS.get(model_name)
    if spec is None:
        raise CheckpointError(
            f"ganbench does not know how to call model {model_name!r} (noise-to-image models and "
            f"{', '.join(IMAGE_MODELS)} are supported)"
        )
    return [spec.attribute] + ([spec.reverse] if spec.reverse else [])


def generator_from_model(gan_model: nn.Module, model_name: str, source: dict) -> Generator:
    """Wrap a reference_models ``GANModel`` (put in eval mode) as a :class:`Generator`.

    Noise-to-image models are called through their ``generate``; image models through the network of
    :data:`IMAGE_MODELS` (the model's own ``input_range`` when it declares one).
    """
    gan_model.eval()
    if _is_noise_model(gan_model):
        kind = "conditional" if gan_model.num_classes else "noise"
        return Generator(
            model_name,
            kind,
            gan_model.generate,
            gan_model.G,
            latent_dim=gan_model.latent_dim,
            noise=gan_model.noise_kind,
            num_classes=gan_model.num_classes,
            source=source,
        )
    attributes = _generator_attributes(gan_model, model_name)
    spec = IMAGE_MODELS[model_name]
    conventions = {
        "input_range": getattr(gan_model, "input_range", spec.input_range),
        "output_range": spec.output_range,
        "channels": spec.channels,
        "multiple": spec.multiple,
        "source": source,
    }
    networks = [getattr(gan_model, attribute) for attribute in attributes]
    reverse = None
    if len(networks) > 1:
        reverse = Generator(f"{model_name}:{attributes[1]}", "image", networks[1], networks[1], **conventions)
    return Generator(model_name, "image", networks[0], networks[0], reverse=reverse, **conventions)


def _from_torchscript(path: Path, conventions: dict) -> Generator:
    """A TorchScript generator; conventions from its ``ganbench.json`` extra file, then ``conventions``."""
    extra = {TORCHSCRIPT_INFO: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a loadable TorchScript archive ({exc})") from None
    try:
        info = json.loads(extra[TORCHSCRIPT_INFO]) if extra[TORCHSCRIPT_INFO] else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: its {TORCHSCRIPT_INFO} is not JSON ({exc})") from None
    info.update({k: v for k, v in conventions.items() if v is not None})
    unknown = set(info) - set(CONVENTION_KEYS)
    if unknown:
        raise CheckpointError(
            f"{path}: unknown convention(s) {sorted(unknown)} (known: {', '.join(CONVENTION_KEYS)})"
        )
    if "kind" not in info:
        raise CheckpointError(
            f"{path}: say how to call this TorchScript generator: embed {TORCHSCRIPT_INFO} with "
            "ganbench.generators.save_torchscript(...), or pass --kind (and --latent-dim for noise models)"
        )
    module.eval()
    return Generator(
        path.stem, forward=module, module=module, source={"format": "torchscript", "path": str(path)}, **info
    )


def save_torchscript(
    module: nn.Module, path: str | os.PathLike, example_inputs: tuple | None = None, **conventions
) -> Path:
    """Save ``module`` as TorchScript with its calling conventions embedded (atomically).

    ``module`` is scripted as it is when it is a ``ScriptModule``, else traced on ``example_inputs``.
    ``conventions`` are :data:`CONVENTION_KEYS` (``kind`` required); they are checked by building a
    :class:`Generator` first.
    """
    Generator("check", forward=module, **conventions)
    if isinstance(module, torch.jit.ScriptModule):
        scripted = module
    else:
        if example_inputs is None:
            raise ValueError(
                "save_torchscript: pass example_inputs to trace a plain nn.Module (or script it first)"
            )
        scripted = torch.jit.trace(module.eval(), example_inputs)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.jit.save(
            scripted, str(tmp), _extra_files={TORCHSCRIPT_INFO: json.dumps(conventions, sort_keys=True)}
        )
    return path


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def _read_pickled_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``: tensors and plain containers only; pickled code is refused."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"refusing to load {path}: it pickles Python objects that safe (weights_only) loading does not "
            f"allow, and ganbench never unpickles code ({first_line}). Save model.state_dict(), "
            "safetensors or TorchScript instead."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({exc})") from None
    if isinstance(state, dict) and set(state) == {"state_dict"}:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        keys = list(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: expected a state dict (names -> tensors), found {keys}")
    return state


def _from_state_dict(state: dict[str, torch.Tensor], arch: str | None, path: Path) -> Generator:
    """Build reference_models model ``arch`` (``MODEL[:CONFIG]``) and load ``state`` into its generator(s)."""
    if not arch:
        raise CheckpointError(
            f"{path} holds plain weights: say which architecture they belong to with --arch MODEL[:CONFIG] "
            "(e.g. --arch dcgan or --arch dcgan:tiny)"
        )
    gan_model, model_name, config_name = _build_reference_model(arch)
    state = {k.removeprefix("model."): v for k, v in state.items()}
    attributes = _generator_attributes(gan_model, model_name)
    prefixed = any(k.split(".", 1)[0] in attributes for k in state)
    loaded: list[str] = []
    for index, attribute in enumerate(attributes if prefixed else attributes[:1]):
        part = (
            {k[len(attribute) + 1 :]: v for k, v in state.items() if k.startswith(attribute + ".")}
            if prefixed
            else state
        )
        if not part and index > 0:
            continue  # the reverse network of a translation model is optional
        try:
            getattr(gan_model, attribute).load_state_dict(part, strict=True)
        except RuntimeError as exc:
            lines = str(exc).splitlines()
            detail = "\n".join(lines[:4] + ([f"... ({len(lines) - 4} more lines)"] if len(lines) > 4 else []))
            raise CheckpointError(
                f"{path}: weights do not fit {model_name}:{config_name} ({attribute}): {detail}"
            ) from None
        loaded.append(attribute)
    source = {"format": "state_dict", "path": str(path), "model": model_name, "config": config_name}
    generator = generator_from_model(gan_model, model_name, source)
    if len(loaded) < len(attributes):
        generator.reverse = None  # no weights for it: an initialised network must not be scored
    return generator
