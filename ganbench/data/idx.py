"""MNIST and Fashion-MNIST: the IDX file reader, the torchvision-layout loader and the downloader.

IDX format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype code, the number of
dimensions ``d``, ``d`` big-endian int32 sizes, then the values big-endian in C order. Files may be
gzip-compressed (detected from the gzip magic bytes, whatever the name says).

Where the files are looked for (torchvision's raw layout, ``.gz`` or uncompressed)::

    ROOT/mnist/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    ROOT/fashion-mnist/FashionMNIST/raw/...        (Fashion-MNIST)
    ROOT/MNIST/raw/..., ROOT/FashionMNIST/raw/...  (what ``torchvision.datasets.MNIST(ROOT)`` writes)
    /usr/share/datasets/fashion-mnist/...          (Debian's ``dataset-fashion-mnist``; Fashion only)

``ROOT`` is the ``root`` argument or ``$GANBENCH_DATA``.
"""

import gzip
import math
import os
import shutil
import urllib.request
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ganbench.errors import CorruptFileError, DataNotFoundError
from ganbench.files import atomic_path, file_digest
from ganbench.settings import data_root

# IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

DATASET_NAMES = ("mnist", "fashion")
SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}

# Folders under the data root, per data set, in the order they are searched.
RAW_FOLDERS = {
    "mnist": ("mnist/MNIST/raw", "MNIST/raw"),
    "fashion": ("fashion-mnist/FashionMNIST/raw", "FashionMNIST/raw"),
}
# Where Debian's dataset-fashion-mnist package puts the four .gz files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Download mirrors and the md5 of each published .gz file (the same table torchvision uses).
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when it starts with the gzip magic."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such IDX file")
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptFileError(f"{path}: broken gzip stream ({exc})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array.

    Raises :class:`CorruptFileError` naming the file when the magic number, dtype code, dimensions or
    file length do not fit the format.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise CorruptFileError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise CorruptFileError(f"{path}: bad IDX magic number {data[:4].hex()} (must start with 0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise CorruptFileError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise CorruptFileError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise CorruptFileError(f"{path}: truncated IDX header ({len(data)} of {header_len} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header_len + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise CorruptFileError(
            f"{path}: IDX shape {shape} of {dtype} needs {expected} bytes, file has {len(data)} "
            f"({'truncated' if len(data) < expected else 'trailing data'})"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _file_stem(split: str, kind: str) -> str:
    """torchvision's file name (without .gz) of ``kind`` ('images'/'labels') of ``split``."""
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte" if kind == "images" else f"{prefix}-labels-idx1-ubyte"


def _candidate_dirs(name: str, root) -> tuple[list[Path], str]:
    """The folders searched for ``name``'s raw files, in order, and a note on the data root.

    Fashion-MNIST falls back to Debian's folder, also when no data root is configured.
    """
    try:
        base = data_root(root)
    except DataNotFoundError as exc:
        if root is not None or name != "fashion":
            raise DataNotFoundError(f"{exc}; or download {name} with {_download_hint(name)}") from None
        return [DEBIAN_FASHION_DIR], f" ({exc})"
    dirs = [base / sub for sub in RAW_FOLDERS[name]]
    if name == "fashion":
        dirs.append(DEBIAN_FASHION_DIR)
    return dirs, ""


def _download_hint(name: str) -> str:
    hint = f"ganbench.data.idx.download_mnist({name!r}, root)"
    if name == "fashion":
        hint += " or `apt-get install dataset-fashion-mnist`"
    return hint


def _find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem``, whichever exists first."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find_mnist_files(name: str = "mnist", split: str = "train", root=None) -> tuple[Path, Path]:
    """Return the ``(images, labels)`` IDX paths of a split; :class:`DataNotFoundError` if absent."""
    _check_choice("name", name, DATASET_NAMES)
    _check_choice("split", split, SPLITS)
    dirs, note = _candidate_dirs(name, root)
    for folder in dirs:
        images = _find_file(folder, _file_stem(split, "images"))
        labels = _find_file(folder, _file_stem(split, "labels"))
        if images and labels:
            return images, labels
    raise DataNotFoundError(
        f"{name} {split} split ({_file_stem(split, 'images')}[.gz] and {_file_stem(split, 'labels')}"
        f"[.gz]) not found in: {', '.join(map(str, dirs))}{note}; set GANBENCH_DATA (or pass root=) to a "
        f"folder holding them, or download them with {_download_hint(name)}"
    )


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


@lru_cache(maxsize=8)
def _decode_split(images_path: str, labels_path: str, _stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check one split (cached per process; ``_stamp`` invalidates on file change)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptFileError(f"{images_path}: expected uint8 (N, 28, 28) images, got {images.dtype} "
                               f"{images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise CorruptFileError(f"{labels_path}: expected {len(images)} uint8 labels to match "
                               f"{images_path}, got {labels.dtype} {labels.shape}")
    if labels.size and int(labels.max()) > 9:
        raise CorruptFileError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def load_mnist(name: str = "mnist", split: str = "train", root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST or Fashion-MNIST: ``(images uint8 (N, 28, 28), labels int64 (N,))``.

    ``name`` is ``"mnist"`` or ``"fashion"``, ``split`` ``"train"`` (60k) or ``"test"`` (10k); ``root``
    defaults to ``$GANBENCH_DATA`` (see the module docstring for the layouts searched). Decoded files
    are cached per process; each call returns fresh tensors that the caller may modify.
    """
    images_path, labels_path = find_mnist_files(name, split, root)
    images, labels = _decode_split(
        str(images_path), str(labels_path), (_stamp(images_path), _stamp(labels_path))
    )
    return torch.tensor(images), torch.tensor(labels, dtype=torch.int64)


def _download_one(filename: str, md5: str, mirrors, folder: Path) -> None:
    """Fetch ``filename`` from the first mirror that serves it with the right md5 (atomic write)."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            with atomic_path(folder / filename) as tmp:
                with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                    shutil.copyfileobj(response, out)
                got = file_digest(tmp, "md5")
                if got != md5:
                    raise CorruptFileError(f"md5 {got} != {md5}")
            return
        except (OSError, CorruptFileError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            failures.append(f"{url}: {exc}")
    raise DataNotFoundError(f"could not download {filename}: " + "; ".join(failures))


def download_mnist(name: str = "mnist", root=None, mirrors=None) -> Path:
    """Download ``name``'s four .gz files into ``ROOT/<torchvision raw folder>`` and return it.

    Each file is checked against its published md5 and moved into place only when it matches; files
    already present with the right md5 are kept. ``mirrors`` (base URLs) defaults to :data:`MIRRORS`.
    Raises :class:`DataNotFoundError` listing every mirror's failure when no mirror serves a file.
    """
    _check_choice("name", name, DATASET_NAMES)
    base = Path(root).expanduser() if root is not None else data_root()
    folder = base / RAW_FOLDERS[name][0]
    folder.mkdir(parents=True, exist_ok=True)
    for filename, md5 in MD5[name].items():
        target = folder / filename
        if target.is_file() and file_digest(target, "md5") == md5:
            continue
        _download_one(filename, md5, mirrors or MIRRORS[name], folder)
    return folder
