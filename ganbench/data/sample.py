"""The MNIST sample shipped inside the package: the first 2,000 MNIST test images and their labels.

It makes the default run and the unit tests work offline, without ``GANBENCH_DATA``. The file
``ganbench/data/sample/mnist_sample.npz`` (compressed, about 0.3 MB) is regenerated from the full data
by :func:`build_embedded_sample`.
"""

import os
from pathlib import Path

import numpy as np
import torch

from ganbench.data.idx import load_mnist
from ganbench.errors import CorruptFileError
from ganbench.files import atomic_path

SAMPLE_PATH = Path(__file__).with_name("sample") / "mnist_sample.npz"
SAMPLE_SOURCE = "mnist/test"
SAMPLE_SIZE = 2000


def build_embedded_sample(root=None, n: int = SAMPLE_SIZE, out: str | os.PathLike = SAMPLE_PATH) -> Path:
    """Write the first ``n`` MNIST test images and labels to ``out`` (atomically) and return its path.

    Regenerate the shipped file with::

        GANBENCH_DATA=../shared/data python -c \\
            "from ganbench.data.sample import build_embedded_sample; build_embedded_sample()"
    """
    images, labels = load_mnist("mnist", "test", root)
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            images=images[:n].numpy(),
            labels=labels[:n].numpy().astype(np.uint8),
            source=np.array(SAMPLE_SOURCE),
        )
    return out


def load_embedded_sample(path: str | os.PathLike = SAMPLE_PATH) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the shipped sample: ``(images uint8 (2000, 28, 28), labels int64 (2000,))``.

    These are the first 2,000 images of the MNIST test split, in order.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path}: cannot read the embedded MNIST sample ({exc})") from None
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise CorruptFileError(f"{path}: unexpected contents: images {images.dtype} {images.shape}, "
                               f"labels {labels.shape}")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
