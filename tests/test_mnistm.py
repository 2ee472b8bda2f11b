"""MNIST-M: the |patch - digit| blend, determinism by seed, the cached train/test builder, the A/B set."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.data.idx import load_mnist
from ganbench.data.mnistm import MnistMnistMDataset, load_mnistm, make_mnistm
from ganbench.data.sr_crops import train291_dir
from ganbench.errors import ImageRangeError, ImageShapeError


@pytest.fixture(scope="module")
def digits(data_root):
    return load_mnist("mnist", "test", data_root)[0][:64]


def test_uniform_background_gives_exact_abs_difference(tmp_path):
    colour = np.array([200, 30, 120], dtype=np.uint8)
    Image.fromarray(np.broadcast_to(colour, (40, 50, 3)).copy()).save(tmp_path / "flat.png")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    out = make_mnistm(images, seed=1, backgrounds_root=tmp_path)
    assert out.dtype == torch.uint8 and out.shape == (7, 3, 28, 28)
    expected = np.abs(colour[None, :, None, None].astype(int) - images[:, None].astype(int))
    np.testing.assert_array_equal(out.numpy(), expected)


def test_blend_over_train291_patches(data_root, digits):
    seed = 11
    patches = make_mnistm(torch.zeros_like(digits), seed, train291_dir(data_root))  # |p - 0| = p
    out = make_mnistm(digits, seed, train291_dir(data_root))
    d = digits[:, None].expand(-1, 3, -1, -1).to(torch.int16)
    assert torch.equal(out.to(torch.int16), (patches.to(torch.int16) - d).abs())
    # Background pixels keep the photo; stroke pixels differ from it by the stroke's grey level.
    background, stroke = d == 0, d >= 200
    assert torch.equal(out[background], patches[background])
    change = (out.to(torch.int16) - patches.to(torch.int16)).abs()[stroke].float().mean()
    assert change > 60
    # The patches are colour photos, not grey: the channels differ noticeably.
    assert float((patches[:, 0].float() - patches[:, 2].float()).abs().mean()) > 5


def test_deterministic_by_seed(data_root, digits):
    root = train291_dir(data_root)
    a = make_mnistm(digits, 3, root)
    assert torch.equal(a, make_mnistm(digits, 3, root))
    b = make_mnistm(digits, 4, root)
    assert float((a.float() - b.float()).abs().mean()) > 10


def test_bad_input():
    with pytest.raises(ImageRangeError, match="uint8"):
        make_mnistm(torch.zeros(2, 28, 28), 0)
    with pytest.raises(ImageShapeError, match=r"\(N, H, W\)"):
        make_mnistm(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 0)


def test_load_mnistm_builds_once_and_pairs_with_mnist(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))
    images, labels = load_mnistm("test", seed=0, root=data_root)
    assert images.shape == (10_000, 3, 28, 28) and images.dtype == torch.uint8
    mnist, mnist_labels = load_mnist("mnist", "test", data_root)
    assert torch.equal(labels, mnist_labels)
    cached = list((tmp_path / "mnistm").glob("*.npz"))
    assert len(cached) == 1
    again, _ = load_mnistm("test", seed=0, root=data_root)
    assert torch.equal(again, images)
    # Where the digit is 255 a pixel is 255 - p, where it is 0 it is p; the patches do not depend on
    # the digits, so the two means add up to about 255.
    d = mnist[:, None].expand(-1, 3, -1, -1)
    stroke_mean = images[d == 255].float().mean()
    background_mean = images[d == 0].float().mean()
    assert abs(float(stroke_mean + background_mean) - 255) < 25

    pairs = MnistMnistMDataset("test", seed=0, root=data_root, random_b=False)
    item = pairs[17]
    assert torch.equal(item["a"], mnist[17].expand(3, -1, -1))
    assert torch.equal(item["b"], images[17])
    assert item["label_a"] == item["label_b"] == int(labels[17])
    unpaired = MnistMnistMDataset("test", seed=0, root=data_root, transform=lambda x: x.float() / 127.5 - 1)
    torch.manual_seed(0)
    drawn = [unpaired[0]["label_b"] for _ in range(20)]
    assert len(set(drawn)) > 3 and len(unpaired) == 10_000
    assert unpaired[0]["a"].dtype == torch.float32 and float(unpaired[0]["a"].min()) == -1.0
