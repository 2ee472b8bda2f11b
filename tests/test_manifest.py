"""sha256 manifest verification of CycleGAN data sets, and ``ganbench data verify``."""

import argparse
import hashlib
import json

import pytest

from ganbench.cli import data as data_cli
from ganbench.data.manifest import read_manifest, verify_dataset
from ganbench.errors import CorruptFileError, DataNotFoundError

FILES = {
    "trainA/a1.jpg": b"apple one" * 50,
    "trainA/a2.jpg": b"apple two",
    "trainB/o1.jpg": b"orange one" * 7,
    "testA/t1.jpg": b"",
    "testB/u1.jpg": bytes(range(256)),
}


@pytest.fixture
def fake_set(tmp_path):
    """A tiny data set ``fruit`` in ``tmp_path/fruit`` and its manifest (sha256 from hashlib)."""
    root = tmp_path / "fruit"
    lines = ["# sha256 size path", ""]
    for rel, content in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()} {len(content)} data/fruit/{rel}")
    lines.append(f"{'0' * 64} 3 data/other/trainA/x.jpg")
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("\n".join(lines) + "\n")
    return root, manifest


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="ganbench")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "verify", *argv])
    return args.func(args)


def test_good_copy(fake_set, capsys):
    root, manifest = fake_set
    report = verify_dataset("fruit", root, manifest, progress=False)
    assert report.ok and report.verified == report.listed == 5
    # The parent folder is accepted too (it holds fruit/trainA ...).
    assert verify_dataset("fruit", root.parent, manifest, progress=False).ok
    assert run_cli("fruit", str(root), "--manifest", str(manifest), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["verified"] == 5 and out["missing"] == []


def test_missing_corrupted_truncated_and_extra(fake_set, capsys):
    root, manifest = fake_set
    (root / "trainA/a2.jpg").unlink()
    corrupted = bytearray(FILES["trainB/o1.jpg"])
    corrupted[3] ^= 0x01  # same size, one bit flipped
    (root / "trainB/o1.jpg").write_bytes(bytes(corrupted))
    (root / "testB/u1.jpg").write_bytes(FILES["testB/u1.jpg"][:100])
    (root / "trainA/new.jpg").write_bytes(b"not listed")
    (root / "trainA/.DS_Store").write_bytes(b"hidden files are ignored")
    report = verify_dataset("fruit", root, manifest, progress=False)
    assert not report.ok
    assert report.missing == ["trainA/a2.jpg"]
    assert report.mismatched == [
        {"path": "testB/u1.jpg", "reason": "size 100 bytes, expected 256"},
        {"path": "trainB/o1.jpg", "reason": "sha256 differs"},
    ]
    assert report.extra == ["trainA/new.jpg"]
    assert report.verified == 2
    assert run_cli("fruit", str(root), "--manifest", str(manifest), "--quiet") == 1
    text = capsys.readouterr().out
    assert (
        "missing (1):" in text and "trainB/o1.jpg: sha256 differs" in text and text.strip().endswith("FAILED")
    )


def test_errors(fake_set, tmp_path):
    root, manifest = fake_set
    with pytest.raises(DataNotFoundError, match="lists no files of 'pear'.*fruit, other"):
        verify_dataset("pear", root, manifest, progress=False)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        run_cli("fruit", str(tmp_path / "absent"), "--manifest", str(manifest))
    with pytest.raises(DataNotFoundError, match="manifest"):
        verify_dataset("fruit", root, tmp_path / "no_manifest.txt", progress=False)
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{'a' * 64} 12 data/fruit/trainA/a1.jpg\nnot-a-hash 12 data/fruit/trainA/a2.jpg\n")
    with pytest.raises(CorruptFileError, match="line 2"):
        read_manifest(bad)


def test_shared_manifest_lists_the_official_sets(data_root):
    datasets = read_manifest(root=data_root)
    counts = {
        name: {
            subset: sum(p.startswith(subset + "/") for p in entries)
            for subset in ("trainA", "trainB", "testA", "testB")
        }
        for name, entries in datasets.items()
    }
    # The image counts of the official CycleGAN releases.
    assert counts == {
        "apple2orange": {"trainA": 995, "trainB": 1019, "testA": 266, "testB": 248},
        "horse2zebra": {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140},
    }
