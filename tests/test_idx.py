"""IDX reader, MNIST/Fashion-MNIST loader, downloader and the embedded MNIST sample."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ganbench.data import idx
from ganbench.data.idx import download_mnist, load_mnist, read_idx
from ganbench.data.sample import SAMPLE_PATH, build_embedded_sample, load_embedded_sample
from ganbench.errors import CorruptFileError, DataNotFoundError

# Official per-class label counts (digits / clothes 0..9).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_CODES = {
    np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of ``array``, written by hand: magic, dtype code, dims, big-endian values."""
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_split(folder: Path, split: str, n: int, gz: bool = True, seed: int = 0):
    """Write a tiny ``split`` of random 28x28 images and labels in torchvision's file names."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return images, labels


# --------------------------------------------------------------------------- the IDX reader


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_round_trips_every_dtype(tmp_path, gz, dtype):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5) * (3 if dtype != np.int8 else 1)
    path = write(tmp_path / "a.idx", idx_bytes(array), gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_decodes_big_endian_by_hand(tmp_path):
    # 0x00000102 = 258 and 0xFFFFFFFF = -1 as big-endian int32, built without numpy.
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes([0, 0, 1, 2, 255, 255, 255, 255])
    out = read_idx(write(tmp_path / "b.idx", data, gz=False))
    assert out.tolist() == [258, -1]


GOOD = idx_bytes(np.zeros((3, 4), np.uint8))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01" + GOOD[1:], "magic"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "dtype code"),
        (GOOD[:3] + b"\x00" + GOOD[4:], "0 dimensions"),
        (GOOD[:6], "truncated IDX header"),
        (b"\x00\x00", "too short"),
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "trailing data"),
        (GOOD[:3] + b"\x03" + GOOD[4:], "needs"),  # 3 dims declared, dims/body no longer fit
        (bytes([0, 0, 0x08, 3]) + b"\xff" * 12, "needs"),  # 2^96 values: no int64 overflow
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_corrupt_files(tmp_path, data, message, gz):
    path = write(tmp_path / "bad-idx3-ubyte", data, gz)
    with pytest.raises(CorruptFileError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such IDX file"):
        read_idx(tmp_path / "absent-idx1-ubyte")


def test_read_idx_rejects_broken_gzip(tmp_path):
    compressed = gzip.compress(GOOD)
    path = write(tmp_path / "cut.gz", compressed[: len(compressed) // 2], gz=False)
    with pytest.raises(CorruptFileError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- load_mnist on hand-built files


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_torchvision_layout(tmp_path, gz):
    images, labels = make_split(tmp_path / "mnist/MNIST/raw", "test", 5, gz=gz)
    x, y = load_mnist("mnist", "test", root=tmp_path)
    assert x.dtype == torch.uint8 and x.shape == (5, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (5,)
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_load_mnist_root_from_environment(tmp_path, monkeypatch):
    images, _ = make_split(tmp_path / "fashion-mnist/FashionMNIST/raw", "train", 3)
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    x, _ = load_mnist("fashion", "train")
    np.testing.assert_array_equal(x.numpy(), images)


def test_fashion_falls_back_to_debian_folder(tmp_path, monkeypatch):
    images, _ = make_split(tmp_path / "debian", "test", 4, seed=3)
    monkeypatch.setattr(idx, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    monkeypatch.delenv("GANBENCH_DATA", raising=False)
    x, _ = load_mnist("fashion", "test")
    np.testing.assert_array_equal(x.numpy(), images)


def test_cached_load_returns_independent_tensors_and_sees_new_files(tmp_path):
    folder = tmp_path / "mnist/MNIST/raw"
    make_split(folder, "test", 5)
    x1, _ = load_mnist("mnist", "test", root=tmp_path)
    x1.zero_()
    x2, _ = load_mnist("mnist", "test", root=tmp_path)
    assert int(x2.sum()) > 0  # the caller's in-place change did not reach the cache
    make_split(folder, "test", 7, seed=1)  # rewritten file: new size, so the cache entry is stale
    x3, _ = load_mnist("mnist", "test", root=tmp_path)
    assert x3.shape == (7, 28, 28)


def test_missing_data_names_the_folders_searched(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    with pytest.raises(DataNotFoundError, match="download_mnist") as info:
        load_mnist("fashion", "train", root=tmp_path)
    assert str(tmp_path / "fashion-mnist/FashionMNIST/raw") in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    monkeypatch.delenv("GANBENCH_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="GANBENCH_DATA"):
        load_mnist("mnist", "train")


def test_bad_labels_are_corrupt(tmp_path):
    folder = tmp_path / "mnist/MNIST/raw"
    make_split(folder, "test", 5)
    write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([1, 2, 3], np.uint8)), gz=True)
    with pytest.raises(CorruptFileError, match="3 uint8 labels|5 uint8 labels"):
        load_mnist("mnist", "test", root=tmp_path)
    write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([0, 1, 2, 3, 10], np.uint8)), gz=True)
    with pytest.raises(CorruptFileError, match="label 10"):
        load_mnist("mnist", "test", root=tmp_path)


def test_unknown_name_or_split():
    with pytest.raises(ValueError, match="unknown name"):
        load_mnist("cifar", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_mnist("mnist", "val")


# --------------------------------------------------------------------------- download (file:// mirrors)


def _serve(folder: Path, seed: int = 0) -> dict:
    """Write the four .gz files of a tiny data set into ``folder``; return their md5 table."""
    make_split(folder, "train", 6, seed=seed)
    make_split(folder, "test", 4, seed=seed + 1)
    return {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def test_download_from_file_mirror_checks_md5_and_falls_back(tmp_path, monkeypatch):
    md5 = _serve(tmp_path / "good")
    _serve(tmp_path / "bad", seed=5)  # same names, other bytes: md5 mismatch
    monkeypatch.setitem(idx.MD5, "mnist", md5)
    mirrors = [(tmp_path / "missing").as_uri(), (tmp_path / "bad").as_uri(), (tmp_path / "good").as_uri()]
    folder = download_mnist("mnist", tmp_path / "root", mirrors=mirrors)
    assert folder == tmp_path / "root/mnist/MNIST/raw"
    assert sorted(p.name for p in folder.iterdir()) == sorted(md5)  # no temporary files left
    x, y = load_mnist("mnist", "train", root=tmp_path / "root")
    assert x.shape == (6, 28, 28) and y.shape == (6,)


def test_download_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    _serve(tmp_path / "bad", seed=5)
    monkeypatch.setitem(idx.MD5, "fashion", {"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(DataNotFoundError, match="md5") as info:
        download_mnist("fashion", tmp_path / "root", mirrors=[(tmp_path / "bad").as_uri()])
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert list((tmp_path / "root/fashion-mnist/FashionMNIST/raw").iterdir()) == []


# --------------------------------------------------------------------------- the real data sets


@pytest.mark.needs_data
def test_real_mnist_shapes_and_label_counts(data_root):
    x, y = load_mnist("mnist", "train", root=data_root)
    assert x.shape == (60_000, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    x, y = load_mnist("mnist", "test", root=data_root)
    assert x.shape == (10_000, 28, 28)
    assert torch.bincount(y).tolist() == MNIST_TEST_COUNTS
    # The uncompressed official train-images file has md5 6bbc9ace...; re-encode and compare.
    x, _ = load_mnist("mnist", "train", root=data_root)
    assert hashlib.md5(idx_bytes(x.numpy())).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"


@pytest.mark.needs_data
def test_real_fashion_shapes_and_label_counts(data_root):
    for split, n in (("train", 60_000), ("test", 10_000)):
        x, y = load_mnist("fashion", split, root=data_root)
        assert x.shape == (n, 28, 28) and x.dtype == torch.uint8
        assert torch.bincount(y).tolist() == [n // 10] * 10


# --------------------------------------------------------------------------- the embedded sample


def test_embedded_sample_is_small_and_well_formed():
    assert SAMPLE_PATH.stat().st_size < 1_000_000
    x, y = load_embedded_sample()
    assert x.shape == (2000, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (2000,) and y.dtype == torch.int64
    assert sorted(torch.unique(y).tolist()) == list(range(10))
    assert int(torch.bincount(y).min()) >= 150  # every digit well represented


@pytest.mark.needs_data
def test_embedded_sample_is_the_first_mnist_test_images(data_root, tmp_path):
    x, y = load_embedded_sample()
    full_x, full_y = load_mnist("mnist", "test", root=data_root)
    assert torch.equal(x, full_x[:2000]) and torch.equal(y, full_y[:2000])
    rebuilt = load_embedded_sample(build_embedded_sample(data_root, out=tmp_path / "s.npz"))
    assert torch.equal(rebuilt[0], x) and torch.equal(rebuilt[1], y)


def test_corrupt_sample_file(tmp_path):
    bad = tmp_path / "s.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="s.npz"):
        load_embedded_sample(bad)
