"""Camera-shake blur: trajectories, kernels, blurring, the BSD100 evaluation set and the training crops."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchmetrics.functional.image import peak_signal_noise_ratio

from ganbench.data.blur import (
    MotionBlurDataset,
    blur_image,
    blurred_bsd100,
    random_motion_kernel,
    random_trajectory,
    real_blur_pairs,
    trajectory_kernel,
)
from ganbench.errors import ImageRangeError, ImageShapeError


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(peak_signal_noise_ratio(a.double(), b.double(), data_range=255.0))


def centre_of_mass(kernel: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(kernel.shape)
    return float((kernel * rows).sum()), float((kernel * cols).sum())


def test_trajectory_has_the_requested_length():
    points = random_trajectory(np.random.default_rng(0), length=17.5, n_points=500)
    assert points.shape == (500,) and points[0] == 0
    assert np.abs(np.diff(points)).sum() == pytest.approx(17.5, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_kernel_is_a_normalised_centred_psf(seed):
    kernel = random_motion_kernel(np.random.default_rng(seed))
    assert kernel.ndim == 2 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0, abs=1e-12)
    centre = kernel.shape[0] // 2
    assert centre_of_mass(kernel) == pytest.approx((centre, centre), abs=1e-9)
    assert kernel.max() < 0.5  # spread out: a real blur, not a delta


def test_kernels_are_deterministic_by_seed():
    a = random_motion_kernel(np.random.default_rng(42))
    b = random_motion_kernel(np.random.default_rng(42))
    c = random_motion_kernel(np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_straight_trajectory_gives_a_line_kernel():
    # Without shake the path is a segment of length L: the PSF is the uniform distribution on it, of
    # variance L^2 / 12 along the line; bilinear splatting adds at most 1/4 per axis.
    length = 20.0
    kernel = trajectory_kernel(random_trajectory(np.random.default_rng(3), length, anxiety=0.0))
    rows, cols = np.indices(kernel.shape)
    mr, mc = centre_of_mass(kernel)
    cov = np.cov(np.stack([rows.ravel() - mr, cols.ravel() - mc]), aweights=kernel.ravel(), bias=True)
    major, minor = np.sort(np.linalg.eigvalsh(cov))[::-1]
    assert length**2 / 12 <= major <= length**2 / 12 + 0.5
    assert minor < 0.5


def test_blur_matches_scipy_mirror_convolution():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, size=(3, 40, 50), dtype=np.uint8))
    kernel = random_motion_kernel(rng, 8, 12)
    out = blur_image(image, kernel, noise_sigma=0.0)
    sharp = image.numpy() / 255.0
    ref = np.stack([ndimage.convolve(c, kernel, mode="mirror") for c in sharp])
    ref = np.clip(np.round(ref * 255), 0, 255)
    diff = np.abs(out.numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_noise_has_the_requested_sigma():
    image = torch.full((3, 64, 64), 128, dtype=torch.uint8)
    out = blur_image(image, np.ones((1, 1)), np.random.default_rng(1), noise_sigma=0.02)
    std = float((out.double() - 128).std())
    assert std == pytest.approx(0.02 * 255, rel=0.05)  # rounding adds 1/12 grey level^2 of variance
    with pytest.raises(ValueError, match="rng"):
        blur_image(image, np.ones((1, 1)), noise_sigma=0.02)


def test_blur_rejects_bad_input():
    with pytest.raises(ImageRangeError, match="uint8"):
        blur_image(torch.zeros(3, 8, 8), np.ones((1, 1)), noise_sigma=0)
    with pytest.raises(ImageShapeError, match=r"\(C, H, W\)"):
        blur_image(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), np.ones((1, 1)), noise_sigma=0)
    with pytest.raises(ImageShapeError, match="odd"):
        blur_image(torch.zeros(3, 8, 8, dtype=torch.uint8), np.ones((2, 2)) / 4, noise_sigma=0)
    with pytest.raises(ImageShapeError, match="too large"):
        blur_image(torch.zeros(3, 8, 8, dtype=torch.uint8), np.ones((17, 17)) / 289, noise_sigma=0)


def test_blurred_bsd100_is_fixed_by_seed_and_lowers_psnr(data_root):
    pairs = blurred_bsd100(seed=0, root=data_root, limit=8)
    assert [p.name for p in pairs] == [
        "101085",
        "101087",
        "102061",
        "103070",
        "105025",
        "106024",
        "108005",
        "108070",
    ]
    for index in (0, 5):  # each image's kernel comes from default_rng([seed, index])
        expected = random_motion_kernel(np.random.default_rng([0, index]))
        np.testing.assert_array_equal(pairs[index].kernel, expected)
    assert not np.array_equal(pairs[0].kernel, random_motion_kernel(np.random.default_rng([1, 0])))
    again = blurred_bsd100(seed=0, root=data_root, limit=2)
    assert torch.equal(again[1].blurred, pairs[1].blurred)
    for pair in pairs:
        assert pair.blurred.dtype == torch.uint8 and pair.blurred.shape == pair.sharp.shape
        assert pair.sharp.shape[1] % 4 == 0 and pair.sharp.shape[2] % 4 == 0
        assert psnr(pair.blurred, pair.sharp) < 45


@pytest.mark.slow
def test_blurred_bsd100_full_set(data_root):
    pairs = blurred_bsd100(seed=0, root=data_root)
    assert len(pairs) == 100 and len({p.name for p in pairs}) == 100
    values = [psnr(p.blurred, p.sharp) for p in pairs]
    assert max(values) < 45
    assert 20 < np.mean(values) < 30  # the two real pairs: 25.1 and 24.0 dB


def test_real_pairs(data_root):
    pairs = real_blur_pairs(data_root)
    assert [p.name for p in pairs] == ["Flower", "Istanbul"]
    for pair in pairs:
        assert pair.blurred.shape == pair.sharp.shape == (3, 720, 1280) and pair.kernel is None
        assert 20 < psnr(pair.blurred, pair.sharp) < 30


def test_training_crops(data_root):
    data = MotionBlurDataset(root=data_root, crop_size=64, seed=7)
    assert len(data) == 291  # every train291 image is at least 78 pixels on each side
    item = data[5]
    assert item["blurred"].shape == item["sharp"].shape == (3, 64, 64)
    for value in item.values():
        assert value.dtype == torch.float32 and -1 <= float(value.min()) and float(value.max()) <= 1
    assert torch.equal(data[5]["blurred"], item["blurred"])
    data.set_epoch(1)
    assert not torch.equal(data[5]["sharp"], item["sharp"])
    to_uint8 = lambda x: ((x + 1) * 127.5).round()  # noqa: E731
    values = [psnr(to_uint8(data[i]["blurred"]), to_uint8(data[i]["sharp"])) for i in range(10)]
    assert np.mean(values) < 35
    with pytest.raises(IndexError):
        data[len(data)]
