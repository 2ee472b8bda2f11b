"""Tasks: the uncertainty intervals, the generation tasks' metrics against independent computations (scipy),
conditional plumbing, the reference-feature cache, option checks, the Inception metrics' own sample size
and switch, the published results, and the paired tasks on real data."""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats
from scipy.spatial.distance import cdist
from scipy.special import softmax
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
def isolated_cache(tmp_path, monkeypatch, single_thread):
    """Reference features go to a fresh cache folder; one thread on the shared 2-core machine."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    task_features._MEMORY.clear()


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
    # the spread of the 4 subset values around the full-sample value 1.0; the low end clipped at 0
    expected = stats.t.interval(0.95, 3, loc=1.0, scale=stats.sem([2.0, 4.0, 3.0, 5.0]))
    assert one.method == "subsets(4)" and one.high == pytest.approx(expected[1]) and one.low == 0.0


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


def numpy_kid(real: np.ndarray, fake: np.ndarray, subsets: int, size: int, seed: int) -> float:
    """Unbiased MMD² with the cubic kernel, averaged over the KID protocol's subsets (drawn with
    ``torch.randperm`` from ``seed``, real then fake, as the metric documents)."""
    generator, dim, values = torch.Generator().manual_seed(seed), real.shape[1], []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=generator)[:size].numpy()]
        y = fake[torch.randperm(len(fake), generator=generator)[:size].numpy()]
        k_xx, k_yy, k_xy = ((a @ b.T / dim + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        values.append(within - 2.0 * k_xy.mean())
    return float(np.mean(values))


def scipy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: the share of one set inside the union of the other's k-NN balls."""

    def share_inside(points: np.ndarray, support: np.ndarray) -> float:
        radii = np.sort(cdist(support, support), axis=1)[:, k]  # column 0 is the point itself
        return float((cdist(points, support) <= radii[None, :]).any(axis=1).mean())

    return share_inside(fake, real), share_inside(real, fake)


def test_real_data_metrics_match_independent_computation():
    (real, _), (held_out, _) = embedded_halves()
    task = get_task("mnist", **SMALL, is_splits=1)
    result = task.evaluate(task.holdout(), seed=0, progress=False)
    # Independent: the classifier's features and logits of the same images; FID with scipy's sqrtm,
    # KID, IS, precision and recall written out in numpy / scipy.
    classifier = get_feature_extractor("mnist")
    real_f = classifier(real).double().numpy()
    chosen = held_out[torch.from_numpy(np.sort(np.random.default_rng(0).choice(1000, 200, replace=False)))]
    fake_f = classifier(chosen).double().numpy()
    assert result.distribution["fid"] == pytest.approx(scipy_fid(real_f, fake_f), rel=1e-6)
    assert result.distribution["kid"] == pytest.approx(numpy_kid(real_f, fake_f, 4, 100, seed=0), rel=1e-6)
    p_y_x = softmax(classifier.logits(chosen).double().numpy(), axis=1)
    p_y = p_y_x.mean(0)
    mean_kl = np.mean(np.sum(p_y_x * (np.log(p_y_x) - np.log(p_y)), axis=1))
    assert result.distribution["is"] == pytest.approx(np.exp(mean_kl), rel=1e-6)
    precision, recall = scipy_precision_recall(real_f, fake_f, k=3)
    assert (result.distribution["precision"], result.distribution["recall"]) == pytest.approx(
        (precision, recall), abs=1e-12
    )
    assert result.counts == {"n_real": 1000, "n_fake": 200}
    assert len(result.subsets["fid"]) == 2 and all(v > 0 for v in result.subsets["fid"])
    assert set(result.distribution) == {"fid", "kid", "is", "precision", "recall"}


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


# ---------------------------------------------------------------------------- the Inception's own sample


def nuclear_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two small float64 samples (n < dim) without a matrix square root: the nonzero eigenvalues
    of S_a S_b are the squared singular values of A_c B_c^T / (n - 1), so tr sqrt(S_a S_b) is its
    nuclear norm (both samples of the same size n)."""
    ac, bc = a - a.mean(0), b - b.mean(0)
    n = len(a)
    cross = np.linalg.svd(ac @ bc.T / (n - 1), compute_uv=False).sum()
    mean_term = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    return mean_term + float((ac**2).sum() + (bc**2).sum()) / (n - 1) - 2 * float(cross)


def test_inception_sample_count_and_reference_subset():
    assert task_features.inception_sample_count(0, "cpu", 10000) == 500  # the CPU default
    assert task_features.inception_sample_count(0, "cuda", 10000) == 10000  # the GPU default
    assert task_features.inception_sample_count(0, "cuda:1", 3000) == 3000  # never more than there is
    assert task_features.inception_sample_count(2000, "cpu", 10000) == 2000  # asked for
    (real, _), _ = embedded_halves()
    subset = task_features.reference_subset(real, 100)
    rows = {bytes(image.numpy()) for image in real}
    assert subset.shape == (100, 1, 28, 28) and {bytes(image.numpy()) for image in subset} <= rows
    assert len({bytes(image.numpy()) for image in subset}) == 100  # drawn without replacement
    assert not torch.equal(subset, real[:100])  # not the first images (MNIST's order is not random)
    assert torch.equal(task_features.reference_subset(real, 100), subset)  # the same for every call
    assert task_features.reference_subset(real, 1000) is real
    subsets = [task_features.reference_subset(real, m) for m in (100, 200)]
    assert len({task_features.data_fingerprint(s) for s in subsets}) == 2  # the cache key holds n


def test_inception_fid_uses_its_own_sample_and_caches_the_reference_per_n(tmp_path, monkeypatch):
    """The Inception side with a stand-in network (the 128-d MNIST classifier): its sample size, its
    reference subset, the FID against scipy, and the reference cache keyed by data, extractor and n."""
    from ganbench.tasks import generation

    stand_in = get_feature_extractor("mnist")
    built = []
    monkeypatch.setattr(generation, "inception_available", lambda weights="": True)

    def extractor(name, *args):
        built.append(name)
        return stand_in if name == "inception" else get_feature_extractor(name)

    monkeypatch.setattr(generation, "feature_extractor", extractor)
    reference_calls = []
    original = task_features.features_of
    monkeypatch.setattr(
        task_features,
        "features_of",
        lambda e, images, *a, **k: reference_calls.append(len(images)) or original(e, images, *a, **k),
    )
    (real, _), _ = embedded_halves()
    task = get_task("mnist", **{**SMALL, "inception": "auto", "inception_samples": 120})
    samples = task.holdout()
    result = task.evaluate(samples, 0, progress=False)
    assert "inception" in built and "fid_inception" in [s.name for s in task.metric_specs()]
    fakes = task.samples(samples, 0, False)[0]
    expected = scipy_fid(
        stand_in(task_features.reference_subset(real, 120)).double().numpy(),
        stand_in(fakes[:120]).double().numpy(),
    )
    assert result.distribution["fid_inception"] == pytest.approx(expected, rel=1e-6)
    assert result.sample_sizes["fid_inception"] == 120 and result.counts["n_inception"] == 120
    assert result.sample_sizes["fid"] == 200 and result.counts["n_fake"] == 200  # domain metrics: n
    assert len(result.subsets["fid_inception"]) == 2
    assert summarize(task.metric_specs(), [result])["fid_inception"].n == 120  # reported with its n
    assert sorted(reference_calls) == [120, 1000]  # the reference sides: Inception subset, domain
    cache = tmp_path / "cache" / "reference-features"
    assert len(list(cache.glob("*.npz"))) == 2
    task_features._MEMORY.clear()  # a new process: both references come from the disk cache
    reference_calls.clear()
    again = task.evaluate(samples, 0, progress=False)
    assert reference_calls == []
    assert again.distribution["fid_inception"] == result.distribution["fid_inception"]
    # another n is another reference subset: computed once and cached beside the first
    other = get_task("mnist", **{**SMALL, "inception": True, "inception_samples": 150})
    other.evaluate(samples, 0, progress=False)
    assert reference_calls == [150] and len(list(cache.glob("*.npz"))) == 3
    # inception_samples = 0: the CPU default (500), capped at the sample size
    default = get_task("mnist", **{**SMALL, "inception": True}).evaluate(samples, 0, progress=False)
    assert default.counts["n_inception"] == 200


def test_inception_can_be_switched_off(tmp_path, monkeypatch):
    from ganbench.tasks import generation

    with pytest.raises(ConfigError, match="inception_samples >= 0"):
        get_task("mnist", inception_samples=-5)
    with pytest.raises(ConfigError, match="inception_samples must be >= 0"):
        get_task("mnist2mnistm", inception_samples=-1)
    monkeypatch.setattr(generation, "inception_available", lambda weights="": True)  # weights "present"
    original = generation.feature_extractor

    def no_inception(name, *args):
        assert name != "inception", "inception = false must not even build the Inception"
        return original(name, *args)

    monkeypatch.setattr(generation, "feature_extractor", no_inception)
    task = get_task("mnist", **SMALL)  # inception = false
    assert "fid_inception" not in [s.name for s in task.metric_specs()]
    result = task.evaluate(task.holdout(), 0, progress=False)
    assert set(result.distribution) == {"fid", "kid", "is", "precision", "recall"}
    assert "inception" not in result.extractors and "n_inception" not in result.counts
    for subset in ("testA", "testB"):
        (tmp_path / subset).mkdir()
    apple2orange = get_task("apple2orange", folder=str(tmp_path), inception=False)
    assert "inception = false" in apple2orange.unavailable()  # it has only Inception metrics


@pytest.mark.needs_inception
def test_inception_fid_with_the_real_network_on_a_tiny_sample(inception_weights):
    (real, _), _ = embedded_halves()
    options = {**SMALL, "n": 40, "inception": True, "inception_samples": 8}
    task = get_task("mnist", **options, inception_weights=str(inception_weights))
    samples = task.holdout()
    result = task.evaluate(samples, 0, progress=False)
    inception = get_feature_extractor("inception", str(inception_weights))
    both = torch.cat([task_features.reference_subset(real, 8), task.samples(samples, 0, False)[0][:8]])
    features = inception(both).double().numpy()
    expected = nuclear_fid(features[:8], features[8:])
    assert result.distribution["fid_inception"] == pytest.approx(expected, rel=1e-4)
    assert result.sample_sizes["fid_inception"] == 8 and result.counts["n_inception"] == 8
    assert result.extractors["inception"] == inception.extractor_id
    assert any("fid_inception" in note or "2048" in note for note in result.notes)  # small-sample warning


# -------------------------------------------------------------------------------------- published results


def test_published_rows_follow_the_tasks_metrics():
    sr = {row["model"]: row for row in get_task("sr-x4", datasets=["Set5"], vgg=False).published()}
    assert list(sr) == ["bicubic", "SRResNet", "SRGAN"]  # SRGAN's Table 2, x4
    assert sr["SRResNet"]["metrics"] == {"set5_psnr_y": 32.05, "set5_ssim_y": 0.9019}  # Set5 only
    assert sr["SRGAN"]["metrics"] == {"set5_psnr_y": 29.40, "set5_ssim_y": 0.8472}
    assert sr["bicubic"]["metrics"] == {"set5_psnr_y": 28.43, "set5_ssim_y": 0.8211}
    assert sr["SRGAN"]["source"] == "Ledig et al. 2017 (SRGAN), Table 2"
    assert "Y channel" in sr["SRGAN"]["convention"] and "crop = scale" in sr["SRGAN"]["convention"]
    full = {row["model"]: row["metrics"] for row in get_task("sr-x4", vgg=False).published()}
    assert full["SRResNet"]["bsd100_psnr_y"] == 27.58 and full["bicubic"]["set14_ssim_y"] == 0.7486
    # Lucic et al. 2018: Inception FIDs, shown only where the task reports fid_inception
    assert get_task("mnist", inception=False).published() == []
    lucic = {row["model"]: row["metrics"] for row in get_task("mnist", inception=True).published()}
    assert lucic["NS GAN"] == {"fid_inception": 6.8} and lucic["WGAN"] == {"fid_inception": 6.7}
    assert get_task("mnist-cond", inception=True).published() == []  # unconditional results only


def test_every_published_result_names_metrics_its_task_reports():
    from ganbench.tasks.base import published_results

    sources, results = published_results()
    assert {"ledig2017", "lucic2018"} <= set(sources)
    for entry in results:
        options = {"inception": True} if entry["task"] in ("mnist", "fashion") else {}
        reported = {spec.name for spec in get_task(entry["task"], **options).metric_specs()}
        assert set(entry["metrics"]) <= reported, entry
        assert all(isinstance(v, float) and math.isfinite(v) for v in entry["metrics"].values())


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


# ------------------------------------------------------------------- mnist2mnistm: the MNIST-M domain bar


def mnistm_test_set(data_root, n):
    """The first ``n`` MNIST test digits ``(n, 1, 28, 28)``, their labels, and all MNIST-M test images."""
    from ganbench.data.idx import load_mnist
    from ganbench.data.mnistm import load_mnistm

    digits, labels = load_mnist("mnist", "test", data_root)
    return digits[:n, None], labels[:n], load_mnistm("test", 0, data_root)[0]


def mnistm_accuracy(images, labels) -> float:
    """Accuracy of the shipped MNIST-M classifier, computed outside the task."""
    logits = get_feature_extractor("mnistm").logits(images)
    return float((logits.argmax(1) == labels).double().mean())


def mnistm_scipy_fid(real, fake) -> float:
    """FID of MNIST-M classifier features, float64 with scipy's sqrtm (the task's outside reference)."""
    classifier = get_feature_extractor("mnistm")
    return scipy_fid(classifier(real).double().numpy(), classifier(fake).double().numpy())


@pytest.mark.needs_data
def test_mnist2mnistm_identity_translation_has_domain_fid_ratio_one(data_root):
    n = 1000
    digits, labels, mnistm = mnistm_test_set(data_root, n)
    identity = Generator(
        "id", "image", lambda x: x, input_range=(0.0, 255.0), output_range=(0.0, 255.0), channels=3
    )
    task = get_task("mnist2mnistm", n=n, inception=False, root=str(data_root))
    result = task.evaluate(identity, 0, progress=False)
    grey_rgb = digits.expand(-1, 3, -1, -1)
    # the identity "translation" is the untranslated reference itself: ratio 1 on all and on every subset
    assert result.distribution["fid_domain_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert result.subsets["fid_domain_ratio"] == pytest.approx([1.0] * 5, abs=1e-6)
    assert result.distribution["fid_domain"] == result.distribution["fid_domain_untranslated"]
    assert result.distribution["fid_domain_untranslated"] == pytest.approx(
        mnistm_scipy_fid(mnistm, grey_rgb), rel=1e-4
    )
    assert result.distribution["fid_domain"] > 5  # grey digits are far from MNIST-M in its feature space
    target_acc = result.per_image["target_acc"].mean()
    assert target_acc == pytest.approx(mnistm_accuracy(grey_rgb, labels), abs=1e-12)
    assert result.sample_sizes["fid_domain_ratio"] == n and result.counts["n_fake"] == n
    assert result.extractors["domain_mnistm"] == get_feature_extractor("mnistm").extractor_id
    assert "digit_acc" not in result.per_image  # no reverse generator


@pytest.mark.needs_data
def test_mnist2mnistm_perfect_translation_meets_the_bar(data_root):
    n = 1000
    digits, labels, mnistm = mnistm_test_set(data_root, n)
    # MNIST-M test image i is MNIST test digit i blended: look each input digit up by its pixels
    row_of = {digit.numpy().tobytes(): i for i, digit in enumerate(digits[:, 0])}
    assert len(row_of) == n  # no duplicate digits, so the lookup is exact

    def perfect(x):
        rows = [row_of[image[0].round().to(torch.uint8).numpy().tobytes()] for image in x]
        return mnistm[rows].float()

    translator = Generator(
        "perfect", "image", perfect, input_range=(0.0, 255.0), output_range=(0.0, 255.0), channels=3
    )
    task = get_task("mnist2mnistm", n=n, inception=False, root=str(data_root))
    result = task.evaluate(translator, 0, progress=False)
    target_acc = result.per_image["target_acc"].mean()
    assert target_acc == pytest.approx(mnistm_accuracy(mnistm[:n], labels), abs=1e-12)
    assert target_acc >= 0.95
    assert result.distribution["fid_domain"] == pytest.approx(mnistm_scipy_fid(mnistm, mnistm[:n]), rel=1e-4)
    assert result.distribution["fid_domain_untranslated"] == pytest.approx(
        mnistm_scipy_fid(mnistm, digits.expand(-1, 3, -1, -1)), rel=1e-4
    )
    # 0.167 at n = 1000 (0.117 at 5000): the finite-sample floor of FID against 10k images; bar <= 0.5
    assert result.distribution["fid_domain_ratio"] < 0.25
    assert len(result.subsets["fid_domain_ratio"]) == 5 and max(result.subsets["fid_domain_ratio"]) < 1
