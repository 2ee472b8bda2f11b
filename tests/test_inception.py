"""FID Inception: TF 1.x resize, the port's architecture, the extractor and its weights formats."""

import gzip

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganbench.errors import (
    EmptyDatasetError,
    ImageRangeError,
    ImageShapeError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from ganbench.features import weights as W
from ganbench.features.base import extract_features
from ganbench.features.inception import InceptionExtractor, load_inception, state_dict_from_torchscript
from ganbench.features.inception_port import FIDInceptionV3, fid_inception_from_state_dict
from ganbench.features.tf_resize import resize_bilinear_tf1

# ---------------------------------------------------------------- TF 1.x bilinear resize


def tf1_resize_reference(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Independent float64 TF 1.x resize_bilinear(align_corners=False, half_pixel_centers=False).

    Source coordinate of output index d: s = d * in / out, rounded to float32 as TensorFlow computes it;
    blend of floor(s) and min(floor(s) + 1, in - 1) with weight s - floor(s), all else in float64.
    """
    x = x.astype(np.float64)

    def coords(n_in, n_out):
        s = (np.arange(n_out, dtype=np.float32) * (np.float32(n_in) / np.float32(n_out))).astype(np.float64)
        lo = np.floor(s).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), s - lo

    ylo, yhi, fy = coords(x.shape[-2], out_h)
    xlo, xhi, fx = coords(x.shape[-1], out_w)
    top = x[..., ylo, :][..., xlo] * (1 - fx) + x[..., ylo, :][..., xhi] * fx
    bottom = x[..., yhi, :][..., xlo] * (1 - fx) + x[..., yhi, :][..., xhi] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


@pytest.mark.parametrize(
    "in_size, out_size",
    [
        ((28, 28), (299, 299)),
        ((32, 32), (299, 299)),
        ((512, 384), (299, 299)),
        ((300, 301), (299, 299)),
        ((7, 5), (3, 11)),
        ((1, 4), (2, 2)),
    ],
)
def test_resize_matches_float64_tf1_reference(in_size, out_size):
    rng = np.random.default_rng(sum(in_size))
    x = rng.integers(0, 256, (2, 3, *in_size), dtype=np.uint8)
    got = resize_bilinear_tf1(torch.from_numpy(x), out_size)
    assert got.dtype == torch.float32 and got.shape == (2, 3, *out_size)
    # float32 blending of 0..255 values: a few ulp of 255
    np.testing.assert_allclose(got.numpy(), tf1_resize_reference(x, *out_size), rtol=0, atol=2e-3)


def test_resize_equals_align_corners_true_on_edge_padded_input():
    # TF1's s = d * in / out is torch's align_corners=True coordinate d * (in' - 1) / (out' - 1) for
    # in' = in + 1, out' = out + 1; clamping at in - 1 equals replicating the last row/column.
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(0, 255, (2, 3, 20, 13)).astype(np.float32))
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")
    torch_result = F.interpolate(padded, size=(58, 40), mode="bilinear", align_corners=True)[..., :57, :39]
    torch.testing.assert_close(resize_bilinear_tf1(x, (57, 39)), torch_result, rtol=0, atol=1e-3)


def test_resize_differs_from_half_pixel_convention():
    # pytorch-fid resizes with align_corners=False (half-pixel centres): a different image.
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (1, 1, 28, 28)).astype(np.float32))
    half_pixel = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert (resize_bilinear_tf1(x, (299, 299)) - half_pixel).abs().max() > 20


def test_integer_downscale_picks_pixels_like_nearest():
    # s = 2d is an integer: TF1 bilinear picks pixel 2d, as torch's "nearest" (floor(d * in / out)) does.
    x = torch.from_numpy(np.random.default_rng(3).uniform(0, 255, (2, 3, 64, 48)).astype(np.float32))
    torch.testing.assert_close(
        resize_bilinear_tf1(x, (32, 24)), F.interpolate(x, size=(32, 24), mode="nearest"), rtol=0, atol=0
    )


def test_same_size_is_identity():
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(resize_bilinear_tf1(x, (299, 299)), x.float())


# ---------------------------------------------------------------- the port's architecture

# Facts from pytorch-fid's inception.py (fid_inception_v3 = torchvision Inception3 with num_classes=1008,
# aux_logits=False and FIDInceptionA/C/E_1/E_2 blocks): 94 BasicConv2d layers (stem 5, 3 x InceptionA 7,
# InceptionB 4, 4 x InceptionC 10, InceptionD 6, 2 x InceptionE 9), each with conv.weight and bn.weight,
# bias, running_mean, running_var, num_batches_tracked; plus fc.weight and fc.bias.
PYTORCH_FID_KEY_COUNT = 94 * 6 + 2
PYTORCH_FID_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}
TOP_LEVEL = [
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "fc",
]


def random_port_state(seed: int = 0, with_fc: bool = True) -> dict[str, torch.Tensor]:
    """A random pytorch-fid-keyed state dict with sane batch-norm statistics."""
    torch.manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FIDInceptionV3(with_fc=with_fc).state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("running_var"):
            state[key] = torch.rand(shape) + 0.5
        elif key.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape) * 0.1
    return state


def test_port_keys_and_shapes_match_pytorch_fid():
    state = FIDInceptionV3().state_dict()
    assert len(state) == PYTORCH_FID_KEY_COUNT
    for key, shape in PYTORCH_FID_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert list(dict.fromkeys(key.split(".")[0] for key in state)) == TOP_LEVEL
    assert sum(key.endswith(".conv.weight") for key in state) == 94


def test_random_port_runs_to_2048_and_1008():
    model = fid_inception_from_state_dict(random_port_state()).eval()
    with torch.no_grad():
        pool3 = model(torch.rand(1, 3, 299, 299) * 2 - 1)
        logits = model.classify(pool3)
    assert pool3.shape == (1, 2048) and logits.shape == (1, 1008)
    assert torch.isfinite(pool3).all() and pool3.min() >= 0  # averages of ReLU outputs
    assert pool3.std() > 0


def test_state_dict_problems_are_named():
    state = random_port_state(with_fc=False)
    fid_inception_from_state_dict(state)  # no fc, no num_batches_tracked: fine
    broken = dict(state)
    del broken["Mixed_6c.branch7x7_3.bn.bias"]
    with pytest.raises(WeightsIntegrityError, match="Mixed_6c.branch7x7_3.bn.bias"):
        fid_inception_from_state_dict(broken)
    broken = {**state, "Mixed_7c.branch1x1.conv.weight": torch.zeros(320, 2048, 3, 3)}
    with pytest.raises(WeightsIntegrityError, match="wrong shape"):
        fid_inception_from_state_dict(broken)
    with pytest.raises(WeightsIntegrityError, match="unexpected"):
        fid_inception_from_state_dict({**state, "AuxLogits.fc.weight": torch.zeros(3)})


# ---------------------------------------------------------------- the extractor


def mnist_digits(data_root, n: int = 4) -> torch.Tensor:
    """The first ``n`` MNIST test digits as ``(n, 1, 28, 28)`` uint8."""
    with gzip.open(data_root / "mnist/MNIST/raw/t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read(16 + n * 784)
    return torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, 28, 28).copy())


@pytest.fixture(scope="module")
def random_pth(tmp_path_factory):
    """pytorch-fid-format weights with random values (and an fc layer), in torch.save's legacy format
    (pytorch-fid's file predates the zip format)."""
    path = tmp_path_factory.mktemp("pth") / "random_inception.pth"
    torch.save(random_port_state(seed=1), path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def random_extractor(random_pth):
    return load_inception(random_pth)


def test_pth_weights_give_features_and_logits(random_extractor):
    image = torch.randint(
        0, 256, (1, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        features, logits = random_extractor(image), random_extractor.logits(image)
    assert features.shape == (1, 2048) and features.dtype == torch.float32
    assert logits.shape == (1, 1008) and torch.isfinite(logits).all()
    assert random_extractor.num_classes == 1008
    assert random_extractor.extractor_id.startswith("inception-v3-tf-2015-12-05/pool3/")


def test_input_validation(random_extractor):
    with pytest.raises(ImageRangeError, match="uint8"):
        random_extractor(torch.rand(1, 3, 32, 32))
    with pytest.raises(ImageShapeError):
        random_extractor(torch.zeros(1, 4, 32, 32, dtype=torch.uint8))


def test_preprocessing_scales_resizes_and_repeats_grayscale(random_extractor):
    gray = torch.randint(
        0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    x = random_extractor.preprocess(gray)
    assert x.shape == (2, 3, 299, 299) and x.is_contiguous(memory_format=torch.channels_last)
    expected = (tf1_resize_reference(gray.numpy(), 299, 299) - 128) / 128
    np.testing.assert_allclose(x[:, :1].numpy(), expected, rtol=0, atol=1e-5)
    assert torch.equal(x, random_extractor.preprocess(gray.expand(-1, 3, -1, -1)))
    assert torch.equal(x, random_extractor.preprocess(gray[:, 0]))  # (N, H, W) is grayscale
    full_size = torch.full((1, 3, 299, 299), 64, dtype=torch.uint8)
    assert torch.equal(random_extractor.preprocess(full_size), torch.full((1, 3, 299, 299), -0.5))


def test_extract_features_batches_and_iterables(random_extractor):
    images = torch.randint(
        0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    )
    whole = extract_features(random_extractor, images.numpy(), batch_size=2, progress=False)
    from_iterable = extract_features(random_extractor, [images[:1], images[1:]], progress=False)
    assert whole.shape == (2, 2048) and whole.dtype == torch.float32 and whole.device.type == "cpu"
    assert (from_iterable - whole).abs().max() <= 1e-5 * whole.abs().max()
    with pytest.raises(EmptyDatasetError):
        extract_features(random_extractor, [], progress=False)


def test_missing_weights_path(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="ganbench weights fetch inception"):
        load_inception(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(WeightsIntegrityError):
        load_inception(bad)


# ---------------------------------------------------------------- the real weights


# The reference below loads the TorchScript file itself, which torch >= 2.9 flags as deprecated.
ignore_jit_deprecation = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def real_extractor(inception_weights):
    return load_inception()


@ignore_jit_deprecation
@pytest.mark.needs_inception
def test_real_extractor_matches_torchscript_on_independent_preprocessing(real_extractor, inception_weights):
    # Reference: the TorchScript module itself, fed with the float64 numpy TF1 resize and (x - 128) / 128.
    torchscript = torch.jit.load(str(inception_weights), map_location="cpu").eval()
    images = np.random.default_rng(4).integers(0, 256, (1, 3, 64, 48), dtype=np.uint8)
    reference_input = torch.from_numpy(
        ((tf1_resize_reference(images, 299, 299) - 128) / 128).astype(np.float32)
    )
    with torch.inference_mode():
        expected = torchscript(reference_input)
        got = real_extractor(torch.from_numpy(images))
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert real_extractor.num_classes is None
    with pytest.raises(WeightsNotFoundError, match="pt_inception-2015-12-05"):
        real_extractor.logits(torch.from_numpy(images))


@pytest.mark.needs_data
@pytest.mark.needs_inception
def test_real_features_on_mnist_are_batch_independent(real_extractor, data_root):
    digits = mnist_digits(data_root)
    one_by_one = extract_features(real_extractor, digits, batch_size=1, progress=False)
    together = extract_features(real_extractor, digits, batch_size=len(digits), progress=False)
    assert together.shape == (4, 2048) and torch.isfinite(together).all()
    assert (one_by_one - together).abs().max() <= 1e-5 * together.abs().max()
    # distinct digits give distinct features
    assert (together[0] - together[1]).abs().max() > 1e-2 * together.abs().max()


@ignore_jit_deprecation
@pytest.mark.needs_inception
def test_same_network_gets_same_id_through_either_format(real_extractor, inception_weights, tmp_path):
    state = state_dict_from_torchscript(
        torch.jit.load(str(inception_weights), map_location="cpu").state_dict()
    )
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / "pt_inception-like.pth"
    torch.save(state, path)
    as_pth = load_inception(path)
    assert as_pth.extractor_id == real_extractor.extractor_id
    assert as_pth.num_classes == 1008
    images = torch.randint(
        0, 256, (1, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(5)
    )
    with torch.inference_mode():
        assert torch.equal(as_pth(images), real_extractor(images))
    state["Mixed_7c.branch_pool.bn.bias"] = state["Mixed_7c.branch_pool.bn.bias"] + 1e-3
    torch.save(state, path)
    assert load_inception(path).extractor_id != real_extractor.extractor_id


@pytest.mark.needs_inception
def test_default_weights_are_hash_checked(inception_weights, monkeypatch):
    monkeypatch.setattr(W, "INCEPTION_SHA256", "0" * 64)
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        load_inception()
    assert isinstance(load_inception(inception_weights), InceptionExtractor)  # explicit path: no pinned hash
