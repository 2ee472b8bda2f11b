"""Bicubic SR baseline: published numbers and the ``sr-baseline`` command."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from ganbench.cli import sr_baseline as cli
from ganbench.errors import DataNotFoundError
from ganbench.imresize import imresize
from ganbench.metrics.image import psnr, ssim
from ganbench.sr import bicubic_baseline, sr_dataset_dir


def parse(argv):
    parser = argparse.ArgumentParser(prog="ganbench")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.mark.needs_data
def test_set5_x4_matches_published_bicubic(data_root):
    """Published (SRCNN, VDSR, EDSR tables): Set5 x4 bicubic 28.42 dB / 0.8104."""
    result = bicubic_baseline("Set5", 4, root=data_root, progress=False)
    assert [row["name"] for row in result["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
    assert abs(result["mean_psnr"] - 28.42) <= 0.01
    assert abs(result["mean_ssim"] - 0.8104) <= 0.001


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("dataset, published_psnr, published_ssim", [("Set14", 26.00, 0.7027),
                                                                     ("BSD100", 25.96, 0.6675)])
def test_set14_bsd100_x4_match_published_bicubic(data_root, dataset, published_psnr, published_ssim):
    result = bicubic_baseline(dataset, 4, root=data_root, progress=False)
    assert abs(result["mean_psnr"] - published_psnr) <= 0.01
    assert abs(result["mean_ssim"] - published_ssim) <= 0.001


def test_cli_on_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (9, 9, 3)).astype(np.float64)
    for i, size in enumerate([(38, 41), (30, 30)]):  # smooth images, not multiples of 2
        image = np.clip(imresize(base.transpose(2, 0, 1), output_shape=size) + i, 0, 255)
        Image.fromarray(image.transpose(1, 2, 0).round().astype(np.uint8)).save(tmp_path / f"im{i}.png")
    args = parse(["sr-baseline", "--dataset", str(tmp_path), "--scale", "2", "--json"])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scale"] == 2 and [r["name"] for r in result["images"]] == ["im0", "im1"]
    # independent recomputation of the first image
    hr = np.asarray(Image.open(tmp_path / "im0.png")).transpose(2, 0, 1)[:, :38, :40]
    sr = imresize(imresize(hr, 0.5), 2.0)
    assert abs(result["images"][0]["psnr"] - float(psnr(sr, hr, crop_border=2, y_channel=True))) < 1e-9
    assert abs(result["images"][0]["ssim"] - float(ssim(sr, hr, crop_border=2, y_channel=True))) < 1e-9
    assert abs(result["mean_psnr"] - np.mean([r["psnr"] for r in result["images"]])) < 1e-9
    assert 25 < result["mean_psnr"] < 60 and 0.5 < result["mean_ssim"] <= 1

    # the default scale is x4: the 30x30 image is cropped to 28x28 and scored with a 4-pixel border
    args = parse(["sr-baseline", "--dataset", str(tmp_path), "--json"])
    assert args.func(args) == 0
    x4 = json.loads(capsys.readouterr().out)
    hr = np.asarray(Image.open(tmp_path / "im1.png")).transpose(2, 0, 1)[:, :28, :28]
    sr = imresize(imresize(hr, 0.25), 4.0)
    assert x4["scale"] == 4
    assert abs(x4["images"][1]["psnr"] - float(psnr(sr, hr, crop_border=4, y_channel=True))) < 1e-9

    args = parse(["sr-baseline", "--dataset", str(tmp_path)])
    assert args.func(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-1].startswith("mean") and f"{x4['mean_psnr']:.2f}" in table[-1]


def test_dataset_resolution(tmp_path):
    (tmp_path / "sr" / "Set5" / "HR").mkdir(parents=True)
    assert sr_dataset_dir("set5", root=tmp_path) == tmp_path / "sr" / "Set5" / "HR"
    assert sr_dataset_dir(tmp_path) == tmp_path
    with pytest.raises(DataNotFoundError, match="Set14"):
        sr_dataset_dir("Set14", root=tmp_path)
    with pytest.raises(DataNotFoundError, match="neither"):
        sr_dataset_dir(tmp_path / "missing")
    with pytest.raises(ValueError, match="scale"):
        bicubic_baseline(tmp_path, scale=1)
    with pytest.raises(SystemExit):
        parse(["sr-baseline", "--dataset", "Set5", "--scale", "1"])
