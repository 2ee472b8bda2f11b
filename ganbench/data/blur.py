"""Synthetic camera-shake blur (DeblurGAN, Kupyn et al. 2018, Sec. 3.1) and the deblurring data sets.

Blur model, after Boracchi & Foi (IEEE TIP 2012) as used by DeblurGAN:

1. :func:`random_trajectory`: the camera path is a Markov process on the complex plane. The velocity
   has constant speed (the path has exactly ``length`` pixels); at each of ``n_points`` steps its
   direction changes by a Gaussian shake, a deterministic pull back towards the start (inertia /
   centripetal term, scaled by the *anxiety*) and, with a small probability, an impulsive jump that
   roughly reverses the motion. Shake, pull, jump probability and anxiety are drawn per trajectory.
2. :func:`trajectory_kernel`: the trajectory points (equal exposure time each) are splatted onto the
   pixel grid with bilinear weights (sub-pixel interpolation): a non-negative kernel that sums to 1,
   of odd size, with its centre of mass exactly on the centre pixel (blur does not shift the image).
3. :func:`blur_image`: the sharp image is convolved with the kernel (borders reflected), Gaussian noise
   of standard deviation ``noise_sigma`` (in 0..1 units) is added, and the result rounded to ``uint8``
   like a camera's output.

Data sets: :func:`blurred_bsd100` (BSD100 blurred with kernels fixed by a seed: the evaluation set),
:func:`real_blur_pairs` (the two real aligned pairs in ``ROOT/deblur/real_pairs``) and
:class:`MotionBlurDataset` (random blurred/sharp training crops of train291). Images are ``uint8
(3, H, W)`` tensors in the evaluation sets; the training set returns float tensors in ``[-1, 1]``, the
convention of :mod:`reference_models.deblurgan`.
"""

import math
import os
from typing import NamedTuple

import numpy as np
import torch
from scipy.signal import fftconvolve
from torch.utils.data import Dataset

from ganbench.data.images import list_images, read_image
from ganbench.data.sr_crops import load_train291
from ganbench.errors import ImageRangeError, ImageShapeError, ImageSizeMismatchError
from ganbench.progress import progress_bar
from ganbench.settings import data_root

__all__ = [
    "random_trajectory",
    "trajectory_kernel",
    "random_motion_kernel",
    "blur_image",
    "BlurPair",
    "blurred_bsd100",
    "real_blur_pairs",
    "MotionBlurDataset",
]

BSD100_HR_DIR = "sr/BSD100/HR"
REAL_PAIRS_DIR = "deblur/real_pairs"
REAL_PAIR_NAMES = ("Flower", "Istanbul")
# Blur lengths (pixels of camera path) drawn uniformly, and the noise, of the sets made here.
MIN_LENGTH, MAX_LENGTH = 5.0, 30.0
NOISE_SIGMA = 0.01


def random_trajectory(
    rng: np.random.Generator, length: float, n_points: int = 2000, anxiety: float | None = None
) -> np.ndarray:
    """Draw a camera-shake trajectory: ``n_points`` complex positions (x + iy, pixels), path ``length``.

    Args:
        rng: numpy random generator (the only source of randomness).
        length: total path length in pixels (each of the ``n_points - 1`` steps is ``length /
            (n_points - 1)`` long).
        n_points: samples of the path (2000, as Boracchi & Foi).
        anxiety: amount of shake (Boracchi & Foi's "anxiety"); default ``U(0.003, 0.01)`` per
            trajectory, around the 0.005 that DeblurGAN's trajectory code recommends (larger values curl
            the path into a small knot).
    """
    if length <= 0 or n_points < 2:
        raise ValueError(f"need length > 0 and n_points >= 2, got length={length}, n_points={n_points}")
    anxiety = rng.uniform(0.003, 0.01) if anxiety is None else anxiety
    centripetal = 0.7 * rng.random()  # pull back towards the starting point
    jump_probability = 0.2 * rng.random()  # impulsive ("big shake") jumps, scaled by the anxiety
    shake = 10.0 * rng.random()  # Gaussian perturbation of the direction
    step = length / (n_points - 1)
    velocity = step * np.exp(2j * np.pi * rng.random())
    jumps = rng.random(n_points - 1) < jump_probability * anxiety
    jump_angles = np.pi + (rng.random(n_points - 1) - 0.5)
    noise = rng.standard_normal(n_points - 1) + 1j * rng.standard_normal(n_points - 1)
    points = np.zeros(n_points, dtype=np.complex128)
    for t in range(n_points - 1):
        dv = anxiety * (shake * noise[t] - centripetal * points[t]) * step
        if jumps[t]:
            dv += 2.0 * velocity * np.exp(1j * jump_angles[t])
        velocity += dv
        velocity *= step / abs(velocity)
        points[t + 1] = points[t] + velocity
    return points


def trajectory_kernel(trajectory: np.ndarray) -> np.ndarray:
    """Blur kernel of a trajectory: ``float64 (k, k)``, ``k`` odd, non-negative, sums to 1.

    Every point carries weight ``1 / n`` spread bilinearly over its four neighbouring pixels (x =
    column, y = row); the trajectory is first translated so that its mean is the centre pixel, hence
    the kernel's centre of mass is exactly the centre.
    """
    points = np.asarray(trajectory, dtype=np.complex128)
    points = points - points.mean()
    half = int(math.ceil(max(np.abs(points.real).max(), np.abs(points.imag).max()))) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1))
    x, y = points.real + half, points.imag + half
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    weight = 1.0 / len(points)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), weight * wy * wx)
    return kernel


def random_motion_kernel(
    rng: np.random.Generator, min_length: float = MIN_LENGTH, max_length: float = MAX_LENGTH
) -> np.ndarray:
    """A random camera-shake kernel: path length ``U(min_length, max_length)`` pixels, random shake."""
    return trajectory_kernel(random_trajectory(rng, rng.uniform(min_length, max_length)))


def _reflect_indices(indices: np.ndarray, size: int) -> np.ndarray:
    """Map indices in ``[-(size - 1), 2 * (size - 1)]`` into ``0..size-1`` by reflection (edge once)."""
    indices = np.abs(indices)
    return np.where(indices > size - 1, 2 * (size - 1) - indices, indices)


def _convolve_valid(
    region: torch.Tensor, kernel: np.ndarray, rng: np.random.Generator | None, noise_sigma: float
) -> torch.Tensor:
    """``'valid'`` convolution of ``uint8 (C, H, W)`` by ``kernel``, plus noise, rounded to ``uint8``.

    Computed in float32 in grey levels (0..255): errors stay far below the final rounding step.
    """
    blurred = fftconvolve(
        region.numpy().astype(np.float32), kernel[None].astype(np.float32), mode="valid", axes=(1, 2)
    )
    if noise_sigma > 0:
        if rng is None:
            raise ValueError("blur_image: pass rng= to draw the noise (or noise_sigma=0)")
        blurred += np.float32(255.0 * noise_sigma) * rng.standard_normal(blurred.shape, dtype=np.float32)
    return torch.from_numpy(np.clip(np.floor(blurred + 0.5), 0, 255).astype(np.uint8))


def blur_image(
    image: torch.Tensor,
    kernel: np.ndarray,
    rng: np.random.Generator | None = None,
    noise_sigma: float = NOISE_SIGMA,
) -> torch.Tensor:
    """Blur ``uint8 (C, H, W)`` with ``kernel``, add Gaussian noise, round: ``uint8 (C, H, W)``.

    The image is reflected at its borders by the kernel radius and convolved (true convolution,
    ``'valid'``), so the output keeps the input size. ``noise_sigma`` is the noise standard deviation
    in 0..1 units, drawn from ``rng`` (required when ``noise_sigma > 0``).
    """
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8:
        raise ImageRangeError(
            f"blur_image: expected a uint8 tensor, got {getattr(image, 'dtype', type(image))}"
        )
    if image.ndim != 3:
        raise ImageShapeError(f"blur_image: expected one (C, H, W) image, got shape {tuple(image.shape)}")
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ImageShapeError(f"blur_image: kernel must be 2-D with odd sides, got shape {kernel.shape}")
    (h, w), (rh, rw) = image.shape[1:], (kernel.shape[0] // 2, kernel.shape[1] // 2)
    if rh >= h or rw >= w:
        raise ImageShapeError(
            f"blur_image: kernel {kernel.shape} is too large for an image of {tuple(image.shape)}"
        )
    rows = _reflect_indices(np.arange(-rh, h + rh), h)
    cols = _reflect_indices(np.arange(-rw, w + rw), w)
    return _convolve_valid(image[:, rows][:, :, cols], kernel, rng, noise_sigma)


class BlurPair(NamedTuple):
    """One deblurring test pair: ``uint8 (3, H, W)`` images, and the kernel when it is known."""

    name: str
    blurred: torch.Tensor
    sharp: torch.Tensor
    kernel: np.ndarray | None


def blurred_bsd100(
    seed: int = 0,
    root: str | os.PathLike | None = None,
    noise_sigma: float = NOISE_SIGMA,
    min_length: float = MIN_LENGTH,
    max_length: float = MAX_LENGTH,
    limit: int | None = None,
) -> list[BlurPair]:
    """The deblurring evaluation set: the 100 BSD100 HR images, each blurred by its own fixed kernel.

    Image ``i`` (sorted file names) is blurred by :func:`random_motion_kernel` and noised by
    :func:`blur_image`, all drawn from ``numpy.random.default_rng([seed, i])``: a given seed always
    yields the same set, and ``limit`` (only the first ``limit`` images, for quick checks) does not
    change them. ``root`` is the data root (default ``$GANBENCH_DATA``); images are 480x320 or
    320x480, sides multiples of 4 as the DeblurGAN generator needs. About 10 s for the 100 images.
    """
    pairs = []
    files = list_images(data_root(root) / BSD100_HR_DIR)[:limit]
    for index, path in enumerate(progress_bar(files, desc="blurring BSD100", unit="img")):
        rng = np.random.default_rng([seed, index])
        sharp = read_image(path)
        kernel = random_motion_kernel(rng, min_length, max_length)
        pairs.append(BlurPair(path.stem, blur_image(sharp, kernel, rng, noise_sigma), sharp, kernel))
    return pairs


def real_blur_pairs(root: str | os.PathLike | None = None) -> list[BlurPair]:
    """The two real aligned motion-blur pairs (DeepDeblur frames, 1280x720): Flower, Istanbul."""
    folder = data_root(root) / REAL_PAIRS_DIR
    pairs = []
    for name in REAL_PAIR_NAMES:
        blurred = read_image(folder / f"{name}_blur1.png")
        sharp = read_image(folder / f"{name}_sharp1.png")
        if blurred.shape != sharp.shape:
            raise ImageSizeMismatchError(
                f"{name}: blurred {tuple(blurred.shape)} vs sharp {tuple(sharp.shape)}"
            )
        pairs.append(BlurPair(name, blurred, sharp, None))
    return pairs


class MotionBlurDataset(Dataset):
    """Random sharp crops of train291 and their synthetic blur: ``{"blurred", "sharp"}`` float32.

    Item ``i`` takes a random ``crop_size``-square crop of image ``i % n_images`` (images smaller than
    ``crop_size`` are skipped) and blurs it with a fresh :func:`random_motion_kernel` (the pixels around
    the crop, reflected at image borders, enter the blur, so the crop has no artificial border) plus
    noise. Both tensors are ``(3, crop_size, crop_size)`` in ``[-1, 1]`` (``x / 127.5 - 1`` of the
    ``uint8`` images). Everything is drawn from ``numpy.random.default_rng([seed, epoch, i])``: call
    :meth:`set_epoch` each epoch for new crops and kernels.

    Args:
        root: data root (default ``$GANBENCH_DATA``).
        crop_size: side of the crops (256 in the DeblurGAN seed; 219 of the 291 images are that large).
        repeats: length of one epoch in passes over the images.
        seed, noise_sigma, min_length, max_length: as in :func:`blurred_bsd100`.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        crop_size: int = 256,
        repeats: int = 1,
        seed: int = 0,
        noise_sigma: float = NOISE_SIGMA,
        min_length: float = MIN_LENGTH,
        max_length: float = MAX_LENGTH,
    ):
        if crop_size < 1 or repeats < 1:
            raise ValueError(f"crop_size and repeats must be positive, got {crop_size}, {repeats}")
        self.images = [img for _, img in load_train291(root, min_size=crop_size)]
        self.crop_size, self.repeats, self.seed = crop_size, repeats, seed
        self.noise_sigma, self.min_length, self.max_length = noise_sigma, min_length, max_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the crops and kernels of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crops")
        image = self.images[index % len(self.images)]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        size = self.crop_size
        top = int(rng.integers(image.shape[1] - size + 1))
        left = int(rng.integers(image.shape[2] - size + 1))
        kernel = random_motion_kernel(rng, self.min_length, self.max_length)
        r = kernel.shape[0] // 2
        # The crop plus a margin of r pixels (reflected where it leaves the image) -> blur 'valid'.
        rows = _reflect_indices(np.arange(top - r, top + size + r), image.shape[1])
        cols = _reflect_indices(np.arange(left - r, left + size + r), image.shape[2])
        region = image[:, rows][:, :, cols]
        blurred = _convolve_valid(region, kernel, rng, self.noise_sigma)
        sharp = image[:, top : top + size, left : left + size]
        return {"blurred": blurred.float() / 127.5 - 1.0, "sharp": sharp.float() / 127.5 - 1.0}
