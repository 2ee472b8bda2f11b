"""train291 loading and the random SR training crops (HR patch + MATLAB-bicubic LR patch)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.data.sr_crops import SRCropDataset, load_photos, load_train291
from ganbench.errors import DataNotFoundError, EmptyDatasetError
from ganbench.imresize import imresize


@pytest.fixture(scope="module")
def crops(data_root):
    return SRCropDataset(root=data_root, crop_size=96, scale=4, seed=3)


def test_train291_has_291_images(data_root):
    images = load_train291(data_root)
    names = [name for name, _ in images]
    assert len(images) == 291
    assert (
        sum(n.startswith("BSD200/") for n in names) == 200 and sum(n.startswith("T91/") for n in names) == 91
    )
    assert all(img.dtype == torch.uint8 and img.shape[0] == 3 for _, img in images)
    assert len(load_train291(data_root, min_size=96)) == 290  # one T91 image is 78x78


def test_crops_shapes_ranges_and_alignment(crops):
    assert len(crops) == 290
    for index in (0, 123, 289):
        item = crops[index]
        lr, hr = item["lr"], item["hr"]
        assert lr.shape == (3, 24, 24) and hr.shape == (3, 96, 96)
        assert lr.dtype == hr.dtype == torch.float32
        assert 0 <= float(lr.min()) and float(lr.max()) <= 1
        assert -1 <= float(hr.min()) and float(hr.max()) <= 1
        # LR was made from the whole image: away from the patch border it equals the bicubic
        # down-scaling of the HR patch itself (the kernel reaches 8 HR = 2 LR pixels around).
        hr_uint8 = torch.round((hr + 1) * 127.5).to(torch.uint8)
        lr_uint8 = torch.round(lr * 255).to(torch.uint8)
        own = imresize(hr_uint8, 0.25)
        diff = (own[:, 2:-2, 2:-2].int() - lr_uint8[:, 2:-2, 2:-2].int()).abs()
        assert int(diff.max()) <= 1


def test_crops_deterministic_per_epoch(crops):
    first = crops[42]["hr"]
    assert torch.equal(crops[42]["hr"], first)
    crops.set_epoch(1)
    try:
        assert not torch.equal(crops[42]["hr"], first)
    finally:
        crops.set_epoch(0)


def test_crop_arguments():
    with pytest.raises(ValueError, match="multiple of scale"):
        SRCropDataset(crop_size=98, scale=4)
    with pytest.raises(ValueError, match="repeats"):
        SRCropDataset(crop_size=96, scale=4, repeats=0)


def test_load_photos_reads_subfolders(tmp_path):
    (tmp_path / "b").mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "top.png")
    Image.fromarray(np.full((30, 40), 7, np.uint8)).save(tmp_path / "b" / "grey.png")
    (tmp_path / "notes.txt").write_text("not an image")
    photos = load_photos(tmp_path)
    assert [name for name, _ in photos] == ["top", "b/grey"]
    assert photos[1][1].shape == (1, 30, 40)
    assert [name for name, _ in load_photos(tmp_path, min_size=20)] == ["b/grey"]
    with pytest.raises(EmptyDatasetError):
        load_photos(tmp_path, min_size=100)
    with pytest.raises(DataNotFoundError):
        load_photos(tmp_path / "nope")
