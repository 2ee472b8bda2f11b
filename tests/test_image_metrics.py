"""PSNR / SSIM against scikit-image, MATLAB's rgb2ycbcr values, and typed errors."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from ganbench.data.images import list_images, read_image
from ganbench.errors import ImageRangeError, ImageShapeError, ImageSizeMismatchError, NonFiniteImageError
from ganbench.imresize import imresize
from ganbench.metrics.image import PSNR, SSIM, psnr, rgb_to_y, ssim

TOL = 1e-6


def skimage_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Wang et al.'s SSIM via skimage for one (C, H, W) image (mean over channels)."""
    return sk_ssim(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
                   use_sample_covariance=False, data_range=data_range)


def matlab_y(rgb_uint8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma of a (3, H, W) uint8 image, as MATLAB's uint8 result (float64 here):
    T = (1/255) * origT, imlincomb(T(1,1), R, T(1,2), G, T(1,3), B, 16), rounded half away."""
    r, g, b = rgb_uint8.astype(np.float64)
    t = [(1 / 255) * w for w in (65.481, 128.553, 24.966)]
    return np.floor(t[0] * r + t[1] * g + t[2] * b + 16 + 0.5)


def noisy_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, shape, dtype=np.uint8)
    preds = np.clip(target + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)
    return preds, target


def test_uint8_batch_matches_skimage():
    preds, target = noisy_pair((3, 3, 40, 37))
    got_psnr = psnr(preds, target, reduction="none")
    got_ssim = ssim(torch.from_numpy(preds), torch.from_numpy(target), reduction="none")
    assert got_psnr.dtype == got_ssim.dtype == torch.float64 and got_psnr.shape == (3,)
    for i in range(3):
        assert abs(float(got_psnr[i]) - sk_psnr(target[i], preds[i], data_range=255)) < TOL
        assert abs(float(got_ssim[i]) - skimage_ssim(preds[i], target[i], 255)) < TOL
    assert abs(float(psnr(preds, target)) - float(got_psnr.mean())) < 1e-12
    assert abs(float(ssim(preds, target)) - float(got_ssim.mean())) < 1e-12


def test_float_single_images_match_skimage():
    rng = np.random.default_rng(1)
    target = rng.uniform(0, 1, (3, 32, 30))
    preds = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    assert abs(float(psnr(preds, target, data_range=1.0)) - sk_psnr(target, preds, data_range=1.0)) < TOL
    assert abs(float(ssim(preds, target, data_range=1.0)) - skimage_ssim(preds, target, 1.0)) < TOL
    gray_p, gray_t = preds[0].astype(np.float32), target[0].astype(np.float32)  # (H, W)
    expected = sk_ssim(gray_p, gray_t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                       data_range=1.0)
    assert abs(float(ssim(gray_p, gray_t, data_range=1.0)) - expected) < TOL


def test_y_channel_is_matlab_rgb2ycbcr():
    colors = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 64, 32]],
                      dtype=np.uint8)
    image = torch.from_numpy(colors.T.reshape(1, 3, 1, 6).copy())
    # MATLAB rgb2ycbcr(uint8(...)) luma; e.g. 16 + (65.481*128 + 128.553*64 + 24.966*32)/255 = 84.27
    assert rgb_to_y(image).flatten().tolist() == [16.0, 235.0, 81.0, 145.0, 41.0, 84.0]
    as_float = rgb_to_y(image.double() / 255, data_range=1.0).flatten()
    expected = (16 + colors.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255) / 255
    np.testing.assert_allclose(as_float.numpy(), expected, rtol=0, atol=1e-15)


def test_y_channel_and_crop_border_match_skimage():
    preds, target = noisy_pair((2, 3, 48, 40), seed=3)
    for i in range(2):
        yp, yt = matlab_y(preds[i])[4:-4, 4:-4], matlab_y(target[i])[4:-4, 4:-4]
        got_p = psnr(preds[i], target[i], crop_border=4, y_channel=True)
        got_s = ssim(preds[i], target[i], crop_border=4, y_channel=True)
        assert abs(float(got_p) - sk_psnr(yt, yp, data_range=255)) < TOL
        expected = sk_ssim(yp, yt, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                           data_range=255)
        assert abs(float(got_s) - expected) < TOL
    gray = torch.from_numpy(preds[:, :1].copy())  # one channel: Y leaves it as it is
    assert float(psnr(gray, target[:, :1], y_channel=True)) == float(psnr(gray, target[:, :1]))


@pytest.mark.needs_data
def test_natural_images_match_skimage(data_root):
    """Set5 and Set14's comic against their bicubic x4 reconstruction (RGB and Y)."""
    files = list_images(data_root / "sr" / "Set5" / "GTmod12")
    files.append(data_root / "sr" / "Set14" / "GTmod12" / "comic.png")
    assert len(files) == 6
    for path in files:
        hr = read_image(path)
        sr = imresize(imresize(hr, 0.25), 4.0)
        a, b = sr.numpy(), hr.numpy()
        assert abs(float(psnr(sr, hr)) - sk_psnr(b, a, data_range=255)) < TOL, path.name
        assert abs(float(ssim(sr, hr)) - skimage_ssim(a, b, 255)) < TOL, path.name
        ya, yb = matlab_y(a)[4:-4, 4:-4], matlab_y(b)[4:-4, 4:-4]
        expected = sk_ssim(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                           data_range=255)
        assert abs(float(ssim(sr, hr, crop_border=4, y_channel=True)) - expected) < TOL, path.name
        expected = sk_psnr(yb, ya, data_range=255)
        assert abs(float(psnr(sr, hr, crop_border=4, y_channel=True)) - expected) < TOL, path.name


def test_identical_images():
    _, target = noisy_pair((2, 3, 16, 16))
    assert torch.isinf(psnr(target, target)) and float(psnr(target, target)) > 0
    assert abs(float(ssim(target, target)) - 1.0) < 1e-12


def test_streaming_metrics_equal_functional_mean():
    preds, target = noisy_pair((5, 3, 24, 24), seed=4)
    kwargs = {"crop_border": 2, "y_channel": True}
    for metric, function in ((PSNR(**kwargs), psnr), (SSIM(**kwargs), ssim)):
        metric.update(preds[:2], target[:2])
        metric.update(torch.from_numpy(preds[2:]), torch.from_numpy(target[2:]))
        expected = float(function(preds, target, **kwargs))
        assert abs(float(metric.compute()) - expected) < 1e-12


def test_bad_input_raises_typed_errors():
    preds, target = noisy_pair((2, 3, 16, 16))
    with pytest.raises(ImageSizeMismatchError):
        psnr(preds, target[:, :, :15])
    with pytest.raises(ImageSizeMismatchError):
        ssim(preds[:1], target)
    nan = preds.astype(np.float64)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteImageError):
        psnr(nan, target.astype(np.float64), data_range=255)
    with pytest.raises(ImageRangeError, match="data_range"):
        ssim(preds.astype(np.float32), target.astype(np.float32))
    with pytest.raises(ImageRangeError, match="must be 255"):
        psnr(preds, target, data_range=1.0, y_channel=True)
    with pytest.raises(ImageShapeError, match="11x11"):
        ssim(preds, target, crop_border=3)
    with pytest.raises(ImageShapeError):
        psnr(preds, target, crop_border=8)
    with pytest.raises(ImageShapeError):
        psnr(preds[:, :2], target[:, :2])
    with pytest.raises(ValueError, match="reduction"):
        psnr(preds, target, reduction="sum")
