"""Tasks: the uncertainty intervals, the generation tasks' metrics against independent computations (scipy),
conditional plumbing, the reference-feature cache, option checks, and the paired tasks on real data."""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats
from torch import nn

from ganbench.data.sample import load_embedded_sample
from ganbench.errors import CheckpointError, ConfigError, DataNotFoundError
from ganbench.features import get_feature_extractor
from ganbench.generators import Generator, SampleSet, bicubic_generator
from ganbench.metrics.image import ssim
from ganbench.scoring import evaluate_seed
from ganbench.tasks import features as task_features
from ganbench.tasks import get_task, list_tasks
from ganbench.tasks.base import (
    DISTRIBUTION,
    NON_NEGATIVE,
    PER_IMAGE,
    MetricSpec,
    SeedResult,
    bootstrap_interval,
    disjoint_subsets,
    summarize,
    t_interval,
)

SMALL = {
    "n": 200,
    "reference": "embedded",
    "inception": False,
    "kid_subsets": 4,
    "kid_subset_size": 100,
    "spread_subsets": 2,
    "batch_size": 100,
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Reference features go to a fresh cache folder; one thread on the shared 2-core machine."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    task_features._MEMORY.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID the pytorch-fid way (scipy's sqrtm of the product), float64: the outside reference."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # dead ReLU units make the product singular; sqrtm still converges
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def embedded_halves():
    images, labels = load_embedded_sample()
    return (images[:1000, None], labels[:1000]), (images[1000:, None], labels[1000:])


class LookupConditional(nn.Module):
    """A 'generator' that returns a fixed real image of the requested class (ignores the noise)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        table = torch.stack([images[(labels == c).nonzero()[0, 0]] for c in range(10)])
        self.register_buffer("table", table.float() / 127.5 - 1.0)

    def forward(self, z, labels):
        return self.table[labels]


# --------------------------------------------------------------------------------------------- intervals


def test_t_interval_matches_scipy():
    values = np.array([3.1, 2.7, 3.6, 3.0, 2.9])
    low, high = t_interval(values.mean(), values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert low == pytest.approx(expected[0], rel=1e-12) and high == pytest.approx(expected[1], rel=1e-12)
    assert all(math.isnan(v) for v in t_interval(1.0, [1.0]))


def test_bootstrap_interval_close_to_normal_theory_and_seeded():
    x = np.random.default_rng(0).normal(10.0, 2.0, size=2000)
    low, high = bootstrap_interval(x)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert bootstrap_interval(x) == (low, high)
    assert bootstrap_interval([5.0, 5.0]) == (5.0, 5.0)


def test_summarize_seeds_subsets_pooling_and_clipping():
    specs = [MetricSpec("fid", False, DISTRIBUTION, "", NON_NEGATIVE), MetricSpec("acc", True, PER_IMAGE, "")]
    runs = [
        SeedResult(per_image={"acc": np.array([1.0, 0.0])}, distribution={"fid": v}, sample_sizes={"fid": 50})
        for v in (4.0, 5.0, 6.0)
    ]
    summary = summarize(specs, runs)
    expected = stats.t.interval(0.95, 2, loc=5.0, scale=stats.sem([4.0, 5.0, 6.0]))
    assert summary["fid"].value == 5.0 and summary["fid"].method == "seeds(3)" and summary["fid"].n == 50
    assert summary["fid"].low == pytest.approx(max(expected[0], 0.0)) and summary[
        "fid"
    ].high == pytest.approx(expected[1])
    assert summary["acc"].value == 0.5 and summary["acc"].n == 6 and summary["acc"].method == "bootstrap"
    one = summarize(specs, [SeedResult(distribution={"fid": 1.0}, subsets={"fid": [2.0, 4.0, 3.0, 5.0]})])[
        "fid"
    ]
    half = stats.t.ppf(0.975, 3) * np.std([2.0, 4.0, 3.0, 5.0], ddof=1) / 2.0
    assert (
        one.method == "subsets(4)" and one.high == pytest.approx(1.0 + half) and one.low == 0.0
    )  # clipped at 0


def test_disjoint_subsets_cover_without_overlap():
    parts = disjoint_subsets(103, 5, seed=3)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(103)) and {len(p) for p in parts} <= {20, 21}


# ----------------------------------------------------------------------------------- generation tasks


def test_registry_and_option_checks():
    assert {
        "mnist",
        "fashion",
        "mnist-cond",
        "fashion-cond",
        "sr-x4",
        "deblur",
        "mnist2mnistm",
        "apple2orange",
    } <= set(list_tasks())
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("cifar")
    with pytest.raises(ConfigError, match="unknown option 'samples'"):
        get_task("mnist", samples=10)
    with pytest.raises(ConfigError, match="must be int"):
        get_task("mnist", n="many")
    with pytest.raises(ConfigError, match="MNIST only"):
        get_task("fashion", reference="embedded")


def test_real_data_metrics_match_independent_computation():
    (real, _), (held_out, _) = embedded_halves()
    task = get_task("mnist", **SMALL)
    result = task.evaluate(task.holdout(), seed=0, progress=False)
    # Independent: the classifier's features of the same images, FID with scipy's sqrtm.
    classifier = get_feature_extractor("mnist")
    real_f = classifier(real).double().numpy()
    chosen = np.sort(np.random.default_rng(0).choice(1000, 200, replace=False))
    fake_f = classifier(held_out[torch.from_numpy(chosen)]).double().numpy()
    assert result.distribution["fid"] == pytest.approx(scipy_fid(real_f, fake_f), rel=1e-6)
    assert result.counts == {"n_real": 1000, "n_fake": 200}
    assert len(result.subsets["fid"]) == 2 and all(v > 0 for v in result.subsets["fid"])
    assert set(result.distribution) == {"fid", "kid", "is", "precision", "recall"}
    assert 0.5 < result.distribution["precision"] <= 1.0 and 1.0 <= result.distribution["is"] <= 10.0


def test_conditional_plumbing_class_accuracy_and_intra_fid():
    (real, real_labels), (held_out, held_labels) = embedded_halves()
    lookup = LookupConditional(held_out, held_labels)
    generator = Generator("lookup", "conditional", lookup, lookup, latent_dim=4, num_classes=10)
    task = get_task("mnist-cond", **SMALL)
    result = evaluate_seed(task, generator, 0, progress=False)
    classifier = get_feature_extractor("mnist")
    table_images = ((lookup.table + 1.0) * 127.5).round().to(torch.uint8)
    table_correct = (classifier.logits(table_images).argmax(1) == torch.arange(10)).double()
    expected_accuracy = float(table_correct[torch.arange(200) % 10].mean())
    assert result.per_image["class_acc"].mean() == pytest.approx(expected_accuracy)
    assert result.per_image["class_acc"].shape == (200,)
    # Real held-out images with their labels: intra-FID is the mean of per-class scipy FIDs.
    samples = SampleSet(held_out[:400], held_labels[:400])
    task = get_task("mnist-cond", **{**SMALL, "n": 400})
    result = task.evaluate(samples, 0, progress=False)
    real_f = classifier(real).double().numpy()
    fake_f = classifier(held_out[:400]).double().numpy()
    expected = np.mean(
        [
            scipy_fid(real_f[(real_labels == c).numpy()], fake_f[(held_labels[:400] == c).numpy()])
            for c in range(10)
        ]
    )
    assert result.distribution["intra_fid"] == pytest.approx(expected, rel=1e-5)
    assert any("smallest class" in note for note in result.notes)


def test_kind_and_label_checks():
    z_to_image = nn.Sequential(nn.Linear(4, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    noise = Generator("mlp", "noise", z_to_image, z_to_image, latent_dim=4)
    with pytest.raises(CheckpointError, match="needs a conditional generator"):
        evaluate_seed(get_task("mnist-cond", **SMALL), noise, 0, progress=False)
    images, _ = load_embedded_sample()
    with pytest.raises(CheckpointError, match="needs class labels"):
        get_task("mnist-cond", **SMALL).evaluate(SampleSet(images[:300, None]), 0, progress=False)


def test_reference_features_are_cached(tmp_path, monkeypatch):
    task = get_task("mnist", **SMALL)
    samples = task.holdout()
    calls = []
    original = task_features.features_of
    monkeypatch.setattr(
        task_features,
        "features_of",
        lambda e, images, *a, **k: calls.append(len(images)) or original(e, images, *a, **k),
    )
    task.evaluate(samples, 0, progress=False)
    assert sorted(calls) == [1000]  # the reference side (the fake side goes through generation.features_of)
    files = list((tmp_path / "cache" / "reference-features").glob("*.npz"))
    assert len(files) == 1
    task_features._MEMORY.clear()  # a new process: the file is read, nothing recomputed
    calls.clear()
    first = task.evaluate(samples, 0, progress=False)
    assert calls == []
    assert first.distribution["fid"] == task.evaluate(samples, 0, progress=False).distribution["fid"]


# -------------------------------------------------------------------------------------- paired tasks


def identity_generator() -> Generator:
    return Generator("identity", "image", lambda x: x, input_range=(0.0, 255.0), output_range=(0.0, 255.0))


@pytest.mark.needs_data
def test_sr_bicubic_matches_the_sr_baseline_and_sample_folders(data_root, tmp_path):
    from PIL import Image

    from ganbench.data.images import list_images, read_image
    from ganbench.sr import bicubic_baseline, bicubic_upscale

    task = get_task("sr-x4", datasets=["Set5"], vgg=False, root=str(data_root))
    result = task.evaluate(bicubic_generator(4), 0, progress=False)
    baseline = bicubic_baseline("Set5", 4, root=data_root, progress=False)
    assert result.per_image["set5_psnr_y"].tolist() == pytest.approx(
        [r["psnr"] for r in baseline["images"]], abs=1e-9
    )
    assert result.per_image["set5_psnr_y"].mean() == pytest.approx(28.42, abs=0.01)  # published bicubic x4
    assert result.counts == {"n_set5": 5}
    folder = tmp_path / "outputs" / "Set5"
    folder.mkdir(parents=True)
    for path in list_images(data_root / "sr" / "Set5" / "HR"):
        _, sr = bicubic_upscale(read_image(path).expand(3, -1, -1), 4)
        Image.fromarray(sr.permute(1, 2, 0).numpy()).save(folder / f"{path.stem}.png")
    from_files = task.evaluate(SampleSet(path=tmp_path / "outputs"), 0, progress=False)
    assert from_files.per_image["set5_ssim_rgb"].tolist() == pytest.approx(
        result.per_image["set5_ssim_rgb"].tolist(), abs=1e-12
    )
    (folder / "baby.png").unlink()
    with pytest.raises(DataNotFoundError, match="baby"):
        task.evaluate(SampleSet(path=tmp_path / "outputs"), 0, progress=False)


@pytest.mark.needs_data
def test_deblur_identity_has_zero_gain_and_skimage_psnr(data_root):
    from skimage.metrics import peak_signal_noise_ratio

    from ganbench.data.blur import blurred_bsd100

    task = get_task("deblur", limit=2, real_pairs=False, root=str(data_root))
    result = task.evaluate(identity_generator(), 0, progress=False)
    pairs = blurred_bsd100(0, data_root, limit=2)
    expected = [peak_signal_noise_ratio(p.sharp.numpy(), p.blurred.numpy(), data_range=255) for p in pairs]
    assert result.per_image["bsd100_psnr"].tolist() == pytest.approx(expected, rel=1e-9)
    assert result.per_image["bsd100_psnr_gain"].tolist() == [0.0, 0.0]
    assert result.per_image["bsd100_ssim"].tolist() == pytest.approx(
        [float(ssim(p.blurred, p.sharp, data_range=255.0)) for p in pairs], rel=1e-12
    )


@pytest.mark.slow
@pytest.mark.needs_data
def test_mnist2mnistm_digit_metrics_with_identity_directions(data_root):
    from ganbench.data.idx import load_mnist
    from ganbench.data.mnistm import load_mnistm

    def gray_to_rgb(x):
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    forward = Generator(
        "id", "image", gray_to_rgb, input_range=(0.0, 255.0), output_range=(0.0, 255.0), channels=3
    )
    forward.reverse = Generator(
        "id-back", "image", gray_to_rgb, input_range=(0.0, 255.0), output_range=(0.0, 255.0)
    )
    task = get_task("mnist2mnistm", n=100, inception=False, root=str(data_root))
    result = task.evaluate(forward, 0, progress=False)
    classifier = get_feature_extractor("mnist")
    digits, labels = load_mnist("mnist", "test", data_root)
    mnistm, _ = load_mnistm("test", 0, data_root)
    cycle = (classifier.logits(digits[:100, None]).argmax(1) == labels[:100]).double().mean()
    back = (
        classifier.logits(mnistm[:100].float().mean(1, keepdim=True).round().to(torch.uint8)).argmax(1)
        == labels[:100]
    )
    assert result.per_image["cycle_acc"].mean() == pytest.approx(float(cycle))
    assert result.per_image["digit_acc"].mean() == pytest.approx(float(back.double().mean()))
    assert "fid_target" not in result.distribution


def test_apple2orange_says_where_the_data_should_be(tmp_path):
    task = get_task("apple2orange", folder=str(tmp_path))
    assert "not distributed with ganbench" in task.unavailable()
    for subset in ("testA", "testB"):
        (tmp_path / "apple2orange" / subset).mkdir(parents=True)
    assert task.folder() == tmp_path / "apple2orange"
