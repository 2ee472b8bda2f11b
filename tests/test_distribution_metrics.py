"""torchmetrics classes: batching and merging equal one pass, extractors, cached reference statistics."""

import numpy as np
import pytest
import torch
from torch import nn

from ganbench.errors import FeatureMismatchError, ImageRangeError, TooFewSamplesError
from ganbench.features.base import FeatureExtractor
from ganbench.metrics.distribution import FID, KID, InceptionScore, PrecisionRecall
from ganbench.metrics.frechet import FeatureStats, fid_from_features, frechet_distance
from ganbench.metrics.inception_score import inception_score
from ganbench.metrics.kid import kernel_inception_distance
from ganbench.metrics.precision_recall import precision_recall

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class TinyExtractor(FeatureExtractor):
    """A fixed random projection of 8x8 RGB uint8 images, with a 4-class head."""

    extractor_id = "tiny-test"
    dim = 6
    num_classes = 4

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.projection = nn.Linear(3 * 8 * 8, self.dim)
        self.head = nn.Linear(self.dim, self.num_classes)

    def forward(self, images):
        return torch.relu(self.projection(images.float().flatten(1) / 255))

    def logits(self, images):
        return self.head(self.forward(images))


def features(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, dim, generator=g) + 0.3 + shift)  # float32, like extractor output


def images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)


def rel_close(a: float, b: float, rel: float = 1e-10) -> bool:
    return abs(a - b) <= rel * abs(b)


@pytest.mark.parametrize("device", DEVICES)
def test_fid_batches_and_merge_equal_one_pass(device):
    real, fake = features(500, 12, 0), features(400, 12, 1, shift=0.2)
    one_pass = fid_from_features(real, fake)
    reference = frechet_distance(
        real.double().mean(0).numpy(), np.cov(real.double().numpy(), rowvar=False),
        fake.double().mean(0).numpy(), np.cov(fake.double().numpy(), rowvar=False),
    )
    assert rel_close(one_pass["fid"], reference)
    first, second = FID(feature_dim=12).to(device), FID(feature_dim=12).to(device)
    for chunk in real[:200].split(64):
        first.update(chunk, real=True)
    first.update(fake[:150], real=False)
    second.update(real[200:].to(device), real=True)
    for chunk in fake[150:].split(50):
        second.update(chunk, real=False)
    first.merge_state(second)
    result = first.compute()
    assert rel_close(result["fid"], one_pass["fid"])
    assert (result["n_real"], result["n_fake"]) == (500, 400)


def test_fid_real_side_seeded_from_cached_stats(tmp_path):
    real, more_real, fake = features(300, 8, 2), features(100, 8, 3), features(200, 8, 4, shift=0.4)
    path = tmp_path / "real_stats.npz"
    FeatureStats.from_features(real, "net-1").save(path)
    metric = FID(real_stats=path)  # dimension and extractor id come from the file
    assert (metric.feature_dim, metric.extractor_id) == (8, "net-1")
    metric.update(fake, real=False)
    assert rel_close(metric.compute()["fid"], fid_from_features(real, fake)["fid"])
    metric.reset()  # keeps the reference, drops the fake side
    metric.update(fake[:100], real=False)
    metric.update(more_real, real=True)  # adds to the reference
    result = metric.compute()
    assert rel_close(result["fid"], fid_from_features(torch.cat([real, more_real]), fake[:100])["fid"])
    assert (result["n_real"], result["n_fake"]) == (400, 100)
    saved = tmp_path / "cached.npz"
    metric.side_stats(real=True).save(saved)
    assert FeatureStats.load(saved).n == 400
    with pytest.raises(FeatureMismatchError):
        FID(real_stats=path, extractor_id="net-2")


def test_fid_seeded_from_pytorch_fid_moments(tmp_path):
    real, fake = features(300, 8, 5).double(), features(250, 8, 6, shift=0.1)
    path = tmp_path / "pytorch_fid.npz"
    np.savez(path, mu=real.mean(0).numpy(), sigma=np.cov(real.numpy(), rowvar=False))
    metric = FID(real_stats=path, extractor_id="inception-x")
    metric.update(fake, real=False)
    result = metric.compute()
    assert result["n_real"] is None and result["n_fake"] == 250
    assert rel_close(result["fid"], fid_from_features(real, fake)["fid"])


def test_fid_with_an_extractor_takes_uint8_images():
    extractor = TinyExtractor()
    metric = FID(extractor)
    real_images, fake_images = images(64, 7), images(48, 8)
    metric.update(real_images, real=True)
    metric.update(fake_images, real=False)
    with torch.no_grad():
        expected = fid_from_features(extractor(real_images), extractor(fake_images))
    assert rel_close(metric.compute()["fid"], expected["fid"])
    assert metric.extractor_id == "tiny-test" and not metric.extractor.training
    metric.train()
    assert not metric.extractor.training  # the extractor stays frozen
    with pytest.raises(ImageRangeError):
        metric.update(real_images.float() / 255, real=True)
    with pytest.raises(FeatureMismatchError):
        metric.merge_state(FID(feature_dim=6, extractor_id="other"))


@pytest.mark.parametrize("device", DEVICES)
def test_kid_batches_and_merge_equal_one_pass(device):
    real, fake = features(300, 10, 9), features(260, 10, 10, shift=0.3)
    one_pass = kernel_inception_distance(real, fake, num_subsets=6, subset_size=100, seed=2)
    first = KID(num_subsets=6, subset_size=100, seed=2).to(device)
    second = KID(num_subsets=6, subset_size=100, seed=2).to(device)
    first.update(real[:120], real=True)
    first.update(fake[:60], real=False)
    second.update(real[120:], real=True)
    second.update(fake[60:], real=False)
    second.merge_state(first)  # torchmetrics puts the incoming state first: the one-pass order
    result = second.compute()
    assert rel_close(result["kid_mean"], one_pass["kid_mean"])
    assert rel_close(result["kid_std"], one_pass["kid_std"])
    assert (result["n_real"], result["n_fake"]) == (300, 260)


@pytest.mark.parametrize("device", DEVICES)
def test_precision_recall_batches_and_merge_equal_one_pass(device):
    real, fake = features(200, 5, 11), features(150, 5, 12, shift=0.4)
    one_pass = precision_recall(real, fake, k=3)
    first, second = PrecisionRecall().to(device), PrecisionRecall().to(device)
    for chunk in real.split(70):
        first.update(chunk, real=True)
    second.update(fake, real=False)
    first.merge_state(second)
    assert first.compute() == one_pass


def test_inception_score_from_logits_and_from_an_extractor():
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(13)) * 2
    first, second = InceptionScore(splits=5), InceptionScore(splits=5)
    first.update(x[:100])
    second.update(x[100:])
    second.merge_state(first)
    assert second.compute() == pytest.approx(inception_score(x, splits=5), rel=1e-12)
    extractor = TinyExtractor()
    metric = InceptionScore(extractor, splits=2)
    batch = images(40, 14)
    metric(batch)  # forward only updates
    with torch.no_grad():
        expected = inception_score(extractor.logits(batch), splits=2)
    assert metric.compute() == pytest.approx(expected, rel=1e-12)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="feature_dim"):
        FID()
    metric = FID(feature_dim=4)
    with pytest.raises(FeatureMismatchError):
        metric.update(torch.ones(5, 3), real=True)
    metric.update(torch.rand(5, 4), real=True)
    with pytest.raises(TooFewSamplesError):
        metric.compute()  # no fake samples yet
    kid = KID()
    kid.update(torch.rand(5, 4), real=True)
    with pytest.raises(FeatureMismatchError):
        kid.update(torch.rand(5, 3), real=True)
    with pytest.raises(TooFewSamplesError):
        kid.compute()
    with pytest.raises(TypeError):
        FID(nn.Linear(2, 2))
