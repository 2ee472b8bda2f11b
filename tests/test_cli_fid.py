"""``ganbench fid``: image folders / npz / statistics files in, the same numbers as the functional API out."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganbench.cli import main
from ganbench.data.sample import load_embedded_sample
from ganbench.errors import SampleSizeWarning
from ganbench.features import get_feature_extractor
from ganbench.metrics.frechet import FeatureStats, fid_from_features
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.metrics.precision_recall import precision_recall


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    """Two 300-image sets of MNIST digits: B is A's neighbours with pixel noise added."""
    images, _ = load_embedded_sample()
    rng = np.random.default_rng(0)
    a = images[:300].numpy()
    noisy = images[300:600].numpy().astype(np.int16) + rng.integers(-40, 41, size=(300, 28, 28))
    b = np.clip(noisy, 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("sets")
    np.savez_compressed(folder / "a.npz", images=a)
    np.savez_compressed(folder / "b.npz", images=b)
    return folder, torch.from_numpy(a), torch.from_numpy(b)


def run_json(capsys, *argv) -> dict:
    """Run the CLI with ``--json`` and return the parsed output."""
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def reference_features(images: torch.Tensor) -> torch.Tensor:
    extractor = get_feature_extractor("mnist")
    with torch.inference_mode():
        return extractor(images.unsqueeze(1))


def test_fid_kid_pr_match_functional_api(two_sets, capsys):
    folder, a, b = two_sets
    out = run_json(capsys, "fid", str(folder / "a.npz"), str(folder / "b.npz"), "--features", "mnist",
                   "--kid", "--kid-subsets", "20", "--kid-subset-size", "100", "--pr")
    fa, fb = reference_features(a), reference_features(b)
    expected_fid = fid_from_features(fa, fb)["fid"]
    kid = kernel_inception_distance(fa, fb, num_subsets=20, subset_size=100)
    pr = precision_recall(fa, fb, k=3)
    assert out["n_a"] == 300 and out["n_b"] == 300
    assert out["features"].startswith("mnist-cnn/")
    assert out["fid"] == pytest.approx(expected_fid, rel=1e-6)
    assert out["fid"] > 1.0  # the noise is visible to the classifier: not a trivially small number
    assert out["kid_mean"] == pytest.approx(kid["kid_mean"], rel=1e-6)
    assert (out["precision"], out["recall"]) == pytest.approx((pr["precision"], pr["recall"]), abs=1e-12)


def test_saved_statistics_round_trip(two_sets, tmp_path, capsys):
    folder, _, _ = two_sets
    a, b = str(folder / "a.npz"), str(folder / "b.npz")
    stats_a, stats_b = tmp_path / "a_stats.npz", tmp_path / "b_stats.npz"
    direct = run_json(capsys, "fid", a, b, "--features", "mnist",
                      "--save-stats-a", str(stats_a), "--save-stats-b", str(stats_b))
    from_stats = run_json(capsys, "fid", str(stats_a), str(stats_b), "--features", "mnist")
    mixed = run_json(capsys, "fid", str(stats_a), b, "--features", "mnist")
    assert from_stats["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    assert mixed["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    # pytorch-fid reads exactly these two keys
    with np.load(stats_a) as f:
        assert f["mu"].shape == (128,) and f["sigma"].shape == (128, 128)


def test_image_folder_input_equals_npz(two_sets, tmp_path, capsys):
    folder, a, _ = two_sets
    images = tmp_path / "pngs"
    images.mkdir()
    for i, image in enumerate(a.numpy()):
        Image.fromarray(image).save(images / f"{i:04d}.png")
    from_folder = run_json(capsys, "fid", str(images), str(folder / "b.npz"), "--features", "mnist")
    from_npz = run_json(capsys, "fid", str(folder / "a.npz"), str(folder / "b.npz"), "--features", "mnist")
    assert from_folder["fid"] == pytest.approx(from_npz["fid"], rel=1e-12)


def test_mismatched_extractors_refuse(two_sets, tmp_path, capsys):
    folder, a, _ = two_sets
    other = FeatureStats.from_features(torch.randn(300, 128, dtype=torch.float64), extractor_id="fashion-cnn/x")
    other.save(tmp_path / "other.npz")
    code = main(["fid", str(folder / "a.npz"), str(tmp_path / "other.npz"), "--features", "mnist"])
    assert code == 2
    assert "FeatureMismatchError" in capsys.readouterr().err


def test_kid_needs_images_not_statistics(two_sets, tmp_path, capsys):
    folder, _, _ = two_sets
    stats = tmp_path / "s.npz"
    run_json(capsys, "fid", str(folder / "a.npz"), str(folder / "b.npz"), "--features", "mnist",
             "--save-stats-a", str(stats))
    assert main(["fid", str(stats), str(folder / "b.npz"), "--features", "mnist", "--kid"]) == 2
    assert "only statistics" in capsys.readouterr().err


@pytest.mark.needs_inception
def test_inception_is_the_default_extractor(inception_weights, tmp_path, capsys):
    """The default path (FID Inception) runs end to end and equals the extractor's own features."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", a)
    np.savez(tmp_path / "b.npz", b)
    with pytest.warns(SampleSizeWarning):  # 6 samples < 2048 dims: FID is biased, say so
        out = run_json(capsys, "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))
    extractor = get_feature_extractor("inception")
    with torch.inference_mode():
        fa = extractor(torch.from_numpy(a).permute(0, 3, 1, 2))
        fb = extractor(torch.from_numpy(b).permute(0, 3, 1, 2))
    assert out["features"].startswith("inception-v3-tf-2015-12-05/pool3/")
    assert out["n_a"] == 6
    with pytest.warns(SampleSizeWarning):
        expected = fid_from_features(fa, fb)["fid"]
    assert out["fid"] == pytest.approx(expected, rel=1e-6)
