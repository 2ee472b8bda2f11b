"""Atomic writes, file hashes and format sniffing (ganbench.files), checked against hashlib and torch."""

import hashlib
import os
import stat

import pytest
import torch
from torch import nn

from ganbench.files import (
    CHUNK_BYTES,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    file_digest,
    is_torchscript,
    sha256_file,
)


class WriterFailed(Exception):
    """Raised by the tests' writers half-way through."""


def test_writes_land_whole_with_normal_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "new" / "board.md", "| a |\n| é |\n")
    assert target == tmp_path / "new" / "board.md"
    assert target.read_bytes() == "| a |\n| é |\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0o600
    atomic_write_bytes(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    assert [p.name for p in target.parent.iterdir()] == ["board.md"]


def test_failed_writer_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "stats.npz"
    with pytest.raises(WriterFailed), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.is_file()
        tmp.write_bytes(b"half of it")
        raise WriterFailed
    assert list(tmp_path.iterdir()) == []


def test_failed_writer_keeps_the_existing_file(tmp_path):
    target = atomic_write_text(tmp_path / "board.csv", "old\n")
    with pytest.raises(WriterFailed), atomic_path(target) as tmp:
        tmp.write_text("new, but only ha")
        raise WriterFailed
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["board.csv"]


def test_failed_replace_keeps_the_existing_file(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "board.csv", "old\n")

    def disk_full(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["board.csv"]


def test_sha256_matches_hashlib_on_a_multi_chunk_file(tmp_path):
    content = bytes(range(256)) * (2 * CHUNK_BYTES // 256) + b"tail"  # two full chunks and a partial one
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(content).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch >= 2.9 marks TorchScript deprecated
def test_torchscript_is_told_from_torch_save_files(tmp_path):
    module = nn.Linear(2, 3)
    torch.jit.save(torch.jit.script(module), tmp_path / "scripted.pt")
    torch.save(module.state_dict(), tmp_path / "state.pt")  # also a zip archive, but without code/
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    assert is_torchscript(tmp_path / "scripted.pt")
    assert not is_torchscript(tmp_path / "state.pt")
    assert not is_torchscript(tmp_path / "junk.pt")
