"""The 28x28 domain classifiers (MNIST, Fashion-MNIST, MNIST-M) used as feature extractors for FID/KID/IS.

Architecture (0.42 M parameters, 1.5 M multiply-adds per image; C = 1 channel for MNIST and
Fashion-MNIST, 3 (RGB) for MNIST-M, which adds 1.6 k parameters and 0.3 M multiply-adds)::

    uint8 (N, C, 28, 28) -> x / 255 in [0, 1]
    conv 5x5, 32, stride 2, pad 2 -> ReLU        (32, 14, 14)
    conv 3x3, 64, stride 2, pad 1 -> ReLU        (64, 7, 7)
    flatten -> linear 3136 -> 128 -> ReLU        features: the 128-d penultimate layer, scaled to
                                                 mean square 1 on the training set
    (dropout 0.3 in training) -> linear 128 -> 10 logits

Strided convolutions replace pooling layers: the conv 3x3 + max-pool version of the same widths ran
about 6x slower on CPU. Extraction runs at about 7,700 images per CPU-second (one thread, AVX2).
The shipped weights live in ``ganbench/features/shipped_weights/{mnist,fashion,mnistm}.safetensors``
and are made by :func:`train_classifier` (``ganbench classifier train mnist``). The MNIST-M classifier
is trained on :func:`ganbench.data.mnistm.load_mnistm`'s train split built with seed
:data:`MNISTM_SEED` (the seed of the ``mnist2mnistm`` task and of the CycleGAN configs) and tested on
its test split.
"""

import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import nn
from tqdm import tqdm

from ganbench.checks import as_uint8_batch
from ganbench.data.idx import load_mnist
from ganbench.data.mnistm import MNISTM_VERSION, load_mnistm
from ganbench.errors import ImageShapeError, WeightsIntegrityError, WeightsNotFoundError
from ganbench.features.base import FeatureExtractor
from ganbench.files import atomic_path, sha256_file

CLASSIFIER_NAMES = ("mnist", "fashion", "mnistm")
WEIGHTS_DIR = Path(__file__).with_name("shipped_weights")
ARCHITECTURE = "cnn28-v1"
METADATA_KEY = "ganbench"  # safetensors metadata key holding the training record as JSON
IMAGE_SIZE = 28
CHANNELS = {"mnist": 1, "fashion": 1, "mnistm": 3}
MNISTM_SEED = 0  # MNIST-M construction seed of the training and test images
# Training recipe per data set: epochs, random shift in pixels, and whether horizontal flips are a
# valid augmentation (clothes are left-right symmetric; Fashion-MNIST items are centred, so no shifts).
# MNIST-M: no augmentation (+-2 px shifts, whose zero fill leaves black borders on the colour
# backgrounds, cost a point of test accuracy) and 5 epochs (96.6%; ~2.5 CPU minutes on one thread).
DEFAULT_EPOCHS = {"mnist": 10, "fashion": 10, "mnistm": 5}
SHIFT = {"mnist": 2, "fashion": 0, "mnistm": 0}
HORIZONTAL_FLIP = {"mnist": False, "fashion": True, "mnistm": False}


def default_weights_path(name: str) -> Path:
    """Where the shipped weights of classifier ``name`` are."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def _check_name(name: str) -> None:
    if name not in CLASSIFIER_NAMES:
        raise ValueError(f"unknown classifier {name!r}; choose from {', '.join(CLASSIFIER_NAMES)}")


class DomainClassifier(FeatureExtractor):
    """Small CNN for 28x28 images: 128-d features (:meth:`forward`) and 10 logits.

    Inputs are validated ``uint8`` batches ``(N, C, 28, 28)``, ``C`` = :attr:`channels` (1 for
    ``mnist`` and ``fashion``, which also take ``(N, 28, 28)``; 3 for ``mnistm``), processed in chunks
    of ``chunk_size`` images so memory stays bounded for large ``N``.
    """

    dim = 128
    num_classes = 10

    def __init__(self, name: str = "mnist", chunk_size: int = 1024):
        super().__init__()
        _check_name(name)
        self.name = name
        self.channels = CHANNELS[name]
        self.chunk_size = chunk_size
        self.extractor_id = f"{name}-cnn/untrained"
        self.conv1 = nn.Conv2d(self.channels, 32, kernel_size=5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, self.dim)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(self.dim, self.num_classes)
        # oneDNN runs these convolutions ~30% faster on CPU with channels-last weights and activations.
        self.to(memory_format=torch.channels_last)

    def features_from_float(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of float images in [0, 1], ``(N, C, 28, 28)`` (differentiable)."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return F.relu(self.fc1(x.flatten(1)))

    def logits_from_float(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of float images in [0, 1] (dropout is active in training mode)."""
        return self.fc2(self.dropout(self.features_from_float(x)))

    def _validate(self, images) -> torch.Tensor:
        x = as_uint8_batch(images, channels=(self.channels,))
        if x.shape[2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ImageShapeError(
                f"images: the {self.name} classifier takes 28x28 images, got {tuple(x.shape[2:])}; "
                "resize them first"
            )
        return x

    def _run(self, images, head, width: int) -> torch.Tensor:
        """Apply ``head`` (float batch -> (n, width)) to a validated uint8 batch, chunk by chunk.

        No dropout here, whatever the module's mode: extraction is always deterministic.
        """
        x = self._validate(images)
        device = self.fc1.weight.device
        out = torch.empty(x.shape[0], width, dtype=torch.float32, device=device)
        with torch.inference_mode():
            for start in range(0, x.shape[0], self.chunk_size):
                chunk = x[start : start + self.chunk_size].to(device)
                out[start : start + chunk.shape[0]] = head(chunk.float().div_(255.0))
        return out

    def forward(self, images) -> torch.Tensor:
        """Return ``(N, 128)`` float32 penultimate features of ``uint8`` images ``(N, C, 28, 28)``."""
        return self._run(images, self.features_from_float, self.dim)

    def logits(self, images) -> torch.Tensor:
        """Return ``(N, 10)`` float32 class logits of ``uint8`` images ``(N, C, 28, 28)``."""
        return self._run(images, lambda x: self.fc2(self.features_from_float(x)), self.num_classes)


def load_classifier(name: str = "mnist", weights: str | os.PathLike | None = None) -> DomainClassifier:
    """Return the classifier ``name`` in eval mode with the shipped (or ``weights``) safetensors.

    Raises :class:`WeightsNotFoundError` when the file is missing and :class:`WeightsIntegrityError`
    when it is not a safetensors file, does not fit the architecture, or was trained on the other
    data set (per its metadata). ``extractor_id`` is ``"<name>-cnn/<first 12 hex of sha256>"``.
    """
    _check_name(name)
    path = Path(weights) if weights is not None else default_weights_path(name)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: no such weights file; train it with `ganbench classifier train {name} --out {path}`"
        )
    model = DomainClassifier(name)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = json.loads((f.metadata() or {}).get(METADATA_KEY, "{}"))
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise WeightsIntegrityError(f"{path}: not a readable safetensors file ({exc})") from None
    trained_on = metadata.get("dataset") if isinstance(metadata, dict) else None
    if trained_on is not None and trained_on != name:
        raise WeightsIntegrityError(f"{path}: weights were trained on {trained_on!r}, not {name!r}")
    _check_state(path, state, model.state_dict())
    model.load_state_dict(state)
    model.extractor_id = f"{name}-cnn/{sha256_file(path)[:12]}"
    return model.eval()


def _check_state(path: Path, state: dict, expected: dict) -> None:
    """Raise :class:`WeightsIntegrityError` unless ``state`` has exactly the expected keys and shapes."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{key} {tuple(state[key].shape)}/{state[key].dtype} (expected {tuple(value.shape)}/float32)"
        for key, value in expected.items()
        if key in state and (state[key].shape != value.shape or state[key].dtype != torch.float32)
    ]
    if missing or unexpected or wrong:
        raise WeightsIntegrityError(
            f"{path}: does not fit the {ARCHITECTURE} classifier: missing {missing}, unexpected "
            f"{unexpected}, wrong shape/dtype {wrong}"
        )
    for key, tensor in state.items():
        if not bool(torch.isfinite(tensor).all()):
            raise WeightsIntegrityError(f"{path}: {key} holds NaN/Inf values")


def accuracy(model: DomainClassifier, images, labels: torch.Tensor) -> float:
    """Fraction of ``images`` (uint8) that ``model`` classifies as ``labels``."""
    predicted = model.logits(images).argmax(dim=1).cpu()
    return float((predicted == labels.cpu()).double().mean())


def normalise_feature_scale(model: DomainClassifier, images) -> float:
    """Rescale ``model`` in place so its features of ``images`` have mean square 1; return the factor.

    ``fc1`` is multiplied by ``s > 0`` and ``fc2``'s weights divided by it: the ReLU commutes with the
    positive factor, so the logits do not change while ``E ||f||^2 / 128 = 1``. Unit-scale features
    suit KID's kernel ``(x.y / d + 1)^3``, which assumes features of order one.
    """
    features = model(images).double()
    scale = float((features.pow(2).sum(dim=1).mean() / model.dim) ** -0.5)
    with torch.no_grad():
        model.fc1.weight.mul_(scale)
        model.fc1.bias.mul_(scale)
        model.fc2.weight.div_(scale)
    return scale


def _augment(x: torch.Tensor, generator: torch.Generator, shift: int, flip: bool) -> torch.Tensor:
    """Random translation of ``(N, C, 28, 28)`` images by up to ``shift`` pixels (zero fill, the same
    offset for all channels) and optional horizontal flip."""
    n, c = x.shape[:2]
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        offsets = torch.arange(IMAGE_SIZE)
        rows = (dy[:, None] + offsets)[:, None, :, None]
        cols = (dx[:, None] + offsets)[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    if flip:
        mirrored = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mirrored[:, None, None, None], x.flip(3), x)
    return x


def load_domain(name: str, split: str, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``uint8 (N, C, 28, 28)`` and labels ``int64 (N,)`` of classifier ``name``'s data set.

    ``mnist`` and ``fashion``: :func:`load_mnist` with a channel axis; ``mnistm``: :func:`load_mnistm`
    built with seed :data:`MNISTM_SEED`. ``split`` is ``"train"`` or ``"test"``.
    """
    _check_name(name)
    if name == "mnistm":
        return load_mnistm(split, MNISTM_SEED, root)
    images, labels = load_mnist(name, split, root)
    return images.unsqueeze(1), labels


def save_weights(state: dict, metadata: dict, out: str | os.PathLike) -> None:
    """Write ``state`` as safetensors to ``out`` atomically (temporary file, then ``os.replace``).

    ``metadata`` is stored as sorted JSON under the single key ``"ganbench"``: safetensors writes
    several metadata keys in a random order, which would make the file bytes (and so the
    ``extractor_id``) differ between identical trainings.
    """
    tensors = {k: v.contiguous() for k, v in state.items()}
    with atomic_path(out) as tmp:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})


def train_classifier(
    name: str = "mnist",
    epochs: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    root=None,
    batch_size: int = 128,
    lr: float = 2e-3,
    limit: int | None = None,
) -> dict:
    """Train classifier ``name`` on its 60k training images and save the weights to ``out``.

    Adam with a cosine learning-rate decay, dropout before the last layer, and light augmentation:
    random +-2 px shifts for MNIST, horizontal flips for Fashion-MNIST, none for MNIST-M (data:
    :func:`load_domain`). After training the features
    are scaled to mean square 1 (:func:`normalise_feature_scale`). Runs on the CPU; the weights are
    bit-identical for the same seed, torch version and thread count (the shipped ones: seed 0, one
    thread). ``out`` defaults to the shipped weights file; ``limit`` trains on the first ``limit``
    training images only (quick checks).
    Returns ``{"path", "sha256", "test_accuracy", "epochs", "seed", "seconds"}``.
    """
    _check_name(name)
    epochs = DEFAULT_EPOCHS[name] if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    out = Path(out) if out is not None else default_weights_path(name)
    train_images, train_labels = load_domain(name, "train", root)
    if limit is not None:
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    test_images, test_labels = load_domain(name, "test", root)

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DomainClassifier(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(train_images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(train_images), generator=generator)
        progress = tqdm(range(steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{epochs}", unit="batch",
                        disable=None)
        for step in progress:
            index = order[step * batch_size : (step + 1) * batch_size]
            x = train_images[index].float().div_(255.0)
            x = _augment(x, generator, SHIFT[name], HORIZONTAL_FLIP[name])
            loss = F.cross_entropy(model.logits_from_float(x), train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 50 == 0:
                progress.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    feature_scale = normalise_feature_scale(model, train_images)
    test_accuracy = accuracy(model, test_images, test_labels)
    metadata = {
        "dataset": name,
        **({"mnistm_seed": MNISTM_SEED, "mnistm_version": MNISTM_VERSION} if name == "mnistm" else {}),
        "architecture": ARCHITECTURE,
        "epochs": epochs,
        "seed": seed,
        "train_images": len(train_images),
        "test_accuracy": test_accuracy,
        "feature_scale": feature_scale,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    save_weights(model.state_dict(), metadata, out)
    return {
        "path": str(out),
        "sha256": sha256_file(out),
        "test_accuracy": test_accuracy,
        "epochs": epochs,
        "seed": seed,
        "seconds": time.perf_counter() - started,
    }
