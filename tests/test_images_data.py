"""Image folders, npz files, and the image Datasets."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganbench.data.images import (
    ImageFolder,
    PairedSRDataset,
    UnpairedImageDataset,
    list_images,
    load_images,
    mod_crop,
    read_image,
)
from ganbench.errors import (
    CorruptFileError,
    DataNotFoundError,
    EmptyDatasetError,
    ImageRangeError,
    ImageShapeError,
    ImageSizeMismatchError,
)
from ganbench.imresize import imresize


def random_rgb(h=20, w=24, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(folder, name, array) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def test_folder_listing_and_lossless_loading(tmp_path):
    images = [random_rgb(seed=i) for i in range(3)]
    save(tmp_path, "b.PNG", images[1])
    save(tmp_path, "a.png", images[0])
    save(tmp_path, "c.bmp", images[2])
    cols, rows = np.meshgrid(np.arange(24) * 10, np.arange(20) * 12)
    smooth = np.stack([cols, rows, np.full((20, 24), 99)], axis=2)
    save(tmp_path, "d.jpg", smooth.astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.PNG", "c.bmp", "d.jpg"]
    batch = load_images(tmp_path)
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, 20, 24)
    for i in range(3):  # png and bmp are lossless
        np.testing.assert_array_equal(batch[i].permute(1, 2, 0).numpy(), images[i])
    jpeg_error = (batch[3].permute(1, 2, 0).float() - torch.from_numpy(smooth).float()).abs().mean()
    assert 0 < float(jpeg_error) < 3  # decoded, lossy


def test_grayscale_kept_and_mixed_folders_become_rgb(tmp_path):
    gray = random_rgb(seed=5)[..., 0]
    save(tmp_path / "gray", "g.png", gray)
    single = load_images(tmp_path / "gray")
    assert single.shape == (1, 1, 20, 24)
    np.testing.assert_array_equal(single[0, 0].numpy(), gray)
    save(tmp_path / "gray", "h.png", random_rgb(seed=6))
    mixed = load_images(tmp_path / "gray")
    assert mixed.shape == (2, 3, 20, 24)
    for c in range(3):
        np.testing.assert_array_equal(mixed[0, c].numpy(), gray)
    rgba = np.concatenate([random_rgb(seed=7), np.full((20, 24, 1), 9, np.uint8)], axis=2)
    save(tmp_path, "rgba.png", rgba)
    rgb = read_image(tmp_path / "rgba.png").permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(rgb, rgba[..., :3])


def test_npz_files(tmp_path):
    images = np.stack([random_rgb(seed=i) for i in range(4)])
    np.savez(tmp_path / "one.npz", anything=images)
    np.savez(tmp_path / "keyed.npz", labels=np.arange(4), images=images)
    np.savez(tmp_path / "x.npz", x=images[..., 0], y=np.arange(4))
    expected = torch.from_numpy(images).permute(0, 3, 1, 2)
    assert torch.equal(load_images(tmp_path / "one.npz"), expected)
    assert torch.equal(load_images(tmp_path / "keyed.npz"), expected)
    gray = load_images(tmp_path / "x.npz")
    assert gray.shape == (4, 1, 20, 24) and torch.equal(gray[:, 0], expected[:, 0])
    np.savez(tmp_path / "float.npz", images=images.astype(np.float32))
    with pytest.raises(ImageRangeError, match="uint8"):
        load_images(tmp_path / "float.npz")
    np.savez(tmp_path / "ambiguous.npz", a=images, b=images)
    with pytest.raises(EmptyDatasetError, match="'images' or 'x'"):
        load_images(tmp_path / "ambiguous.npz")
    np.savez(tmp_path / "channels.npz", images=np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(ImageShapeError):
        load_images(tmp_path / "channels.npz")
    (tmp_path / "broken.npz").write_bytes((tmp_path / "one.npz").read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="broken.npz"):
        load_images(tmp_path / "broken.npz")


def test_missing_empty_corrupt_and_mismatched(tmp_path):
    with pytest.raises(DataNotFoundError):
        list_images(tmp_path / "nope")
    with pytest.raises(DataNotFoundError):
        load_images(tmp_path / "nope.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDatasetError):
        load_images(tmp_path / "empty")
    save(tmp_path / "bad", "fine.png", random_rgb())
    data = (tmp_path / "bad" / "fine.png").read_bytes()
    (tmp_path / "bad" / "truncated.png").write_bytes(data[: len(data) - 30])
    with pytest.raises(CorruptFileError, match="truncated.png"):
        load_images(tmp_path / "bad")
    (tmp_path / "bad" / "truncated.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(CorruptFileError, match="truncated.png"):
        read_image(tmp_path / "bad" / "truncated.png")
    save(tmp_path / "sizes", "a.png", random_rgb(20, 24))
    save(tmp_path / "sizes", "b.png", random_rgb(20, 25))
    with pytest.raises(ImageSizeMismatchError, match="b.png"):
        load_images(tmp_path / "sizes")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ImageRangeError, match="deep.png"):
        read_image(tmp_path / "deep.png")


def test_image_folder_dataset(tmp_path):
    for i in range(3):
        save(tmp_path, f"{i}.png", random_rgb(seed=i))
    dataset = ImageFolder(tmp_path, transform=lambda x: x.float() / 255)
    assert len(dataset) == 3
    item = dataset[1]
    assert item.dtype == torch.float32 and item.shape == (3, 20, 24)
    np.testing.assert_allclose(item.permute(1, 2, 0).numpy() * 255, random_rgb(seed=1), atol=1e-4)


def test_paired_sr_dataset(tmp_path):
    hr_image = random_rgb(50, 45, seed=3)
    save(tmp_path, "img.png", hr_image)
    full = PairedSRDataset(tmp_path, scale=4)[0]
    hr = torch.from_numpy(hr_image).permute(2, 0, 1)[:, :48, :44]
    assert full["name"] == "img" and torch.equal(full["hr"], hr)
    assert torch.equal(full["lr"], imresize(hr, 0.25)) and full["lr"].shape == (3, 12, 11)

    torch.manual_seed(0)
    cropped = PairedSRDataset(tmp_path, scale=4, crop_size=16)
    seen = set()
    for _ in range(20):
        item = cropped[0]
        assert item["hr"].shape == (3, 16, 16) and item["lr"].shape == (3, 4, 4)
        # the LR patch is the matching window of the LR of the whole image
        matches = [(t, s) for t in range(9) for s in range(8)
                   if torch.equal(full["lr"][:, t:t + 4, s:s + 4], item["lr"])
                   and torch.equal(full["hr"][:, 4 * t:4 * t + 16, 4 * s:4 * s + 16], item["hr"])]
        assert matches
        seen.add(matches[0])
    assert len(seen) > 5
    batch = next(iter(DataLoader(cropped, batch_size=2)))
    assert batch["lr"].shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="multiple"):
        PairedSRDataset(tmp_path, scale=4, crop_size=18)
    with pytest.raises(ImageShapeError, match="img.png"):
        PairedSRDataset(tmp_path, scale=4, crop_size=52)[0]


def test_unpaired_dataset(tmp_path):
    for i in range(3):
        save(tmp_path / "A", f"{i}.png", random_rgb(seed=i))
    for i in range(5):
        save(tmp_path / "B", f"{i}.png", random_rgb(seed=10 + i))
    dataset = UnpairedImageDataset(tmp_path / "A", tmp_path / "B")
    assert len(dataset) == 5
    item = dataset[4]
    np.testing.assert_array_equal(item["a"].permute(1, 2, 0).numpy(), random_rgb(seed=1))
    np.testing.assert_array_equal(item["b"].permute(1, 2, 0).numpy(), random_rgb(seed=14))
    torch.manual_seed(0)
    shuffled = UnpairedImageDataset(tmp_path / "A", tmp_path / "B", random_b=True)
    b_seeds = {int(shuffled[0]["b"].sum()) for _ in range(20)}
    assert len(b_seeds) > 1
    with pytest.raises(EmptyDatasetError):
        (tmp_path / "C").mkdir()
        UnpairedImageDataset(tmp_path / "A", tmp_path / "C")


def test_mod_crop():
    image = torch.zeros(3, 50, 45)
    assert mod_crop(image, 4).shape == (3, 48, 44)
    assert mod_crop(image, 5).shape == (3, 50, 45)
    with pytest.raises(ImageShapeError):
        mod_crop(torch.zeros(3, 2, 8), 4)
