"""Sharded feature extraction with torch.distributed (gloo, 2 CPU processes) against one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from ganbench import distributed
from ganbench.data.sample import load_embedded_sample
from ganbench.errors import FeatureMismatchError
from ganbench.features.base import extract_features
from ganbench.features.classifier import load_classifier
from ganbench.metrics.frechet import FeatureStats, fid_from_stats

BATCH = 64
N_REAL, N_FAKE = 300, 250  # not multiples of the batch size, nor of the process count


def sample_sets() -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint MNIST test subsets (the embedded sample) as uint8 (N, 1, 28, 28)."""
    images = load_embedded_sample()[0].unsqueeze(1)
    return images[:N_REAL], images[N_REAL : N_REAL + N_FAKE]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- sharding (no processes needed)


@pytest.mark.parametrize("n, batch, processes", [(300, 64, 2), (250, 64, 3), (10, 4, 4), (3, 8, 2), (0, 5, 2)])
def test_shards_are_contiguous_whole_batches_in_rank_order(n, batch, processes):
    shards = [distributed.shard_range(n, batch, r, processes) for r in range(processes)]
    assert [i for shard in shards for i in shard] == list(range(n))
    for shard in shards:
        assert shard.start % batch == 0 and (shard.stop % batch == 0 or shard.stop == n)
    batches = [-(-len(shard) // batch) for shard in shards]
    assert max(batches) - min(batches) <= 1  # balanced to one batch


def test_shard_range_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        distributed.shard_range(10, 2, 2, 2)
    with pytest.raises(ValueError, match="batch_size"):
        distributed.shard_range(10, 0, 0, 1)


def test_single_process_helpers_are_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.from_env() as active:
        assert not active
        assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
        stats = FeatureStats.from_features(torch.randn(5, 3), "x")
        assert distributed.all_reduce_stats(stats) is stats
        features = torch.randn(4, 3)
        assert distributed.gather_features(features) is features
        assert distributed.shard_range(7, 2) == range(7)


# ---------------------------------------------------------------- two gloo processes


def _worker(process_rank: int, port: int, out_dir: str) -> None:
    """One of two processes: joins through torchrun's environment variables, extracts its shards."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(process_rank),
                      LOCAL_RANK=str(process_rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    with distributed.from_env() as active:
        assert active and distributed.world_size() == 2
        extractor = load_classifier("mnist")
        real, fake = sample_sets()
        sides = {}
        for name, images in (("real", real), ("fake", fake)):
            local = distributed.extract_features_sharded(extractor, images, BATCH, progress=False)
            assert len(local) == len(distributed.shard_range(len(images), BATCH))
            stats = distributed.all_reduce_stats(FeatureStats.from_features(local, extractor.extractor_id))
            sides[name] = (stats, distributed.gather_features(local))
        mismatch = ""
        try:  # every process must refuse statistics of another extractor
            distributed.all_reduce_stats(FeatureStats(128, f"other-{process_rank}"))
        except FeatureMismatchError as exc:
            mismatch = str(exc)
        np.savez(
            Path(out_dir) / f"rank{process_rank}.npz",
            fid=fid_from_stats(sides["real"][0], sides["fake"][0])["fid"],
            n_real=sides["real"][0].n,
            real_sum=sides["real"][0].feature_sum,
            real_features=sides["real"][1].numpy(),
            fake_features=sides["fake"][1].numpy(),
            mismatch=np.array(mismatch),
        )


@pytest.fixture(scope="module")
def single_process():
    """Reference: one process, one thread, the same batch size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extractor = load_classifier("mnist")
        real, fake = sample_sets()
        features = {
            name: extract_features(extractor, images, BATCH, progress=False)
            for name, images in (("real", real), ("fake", fake))
        }
    finally:
        torch.set_num_threads(threads)
    stats = {name: FeatureStats.from_features(f, extractor.extractor_id) for name, f in features.items()}
    return features, fid_from_stats(stats["real"], stats["fake"])["fid"]


def test_two_gloo_processes_give_the_single_process_fid(single_process, tmp_path):
    features, fid = single_process
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    for process_rank in (0, 1):
        with np.load(tmp_path / f"rank{process_rank}.npz") as result:
            assert abs(float(result["fid"]) - fid) <= 1e-9 * fid
            assert int(result["n_real"]) == N_REAL
            np.testing.assert_allclose(result["real_sum"], features["real"].double().sum(0).numpy(), rtol=1e-12)
            # gathered in the original order, and each image ran in the same batch as in one process
            assert np.array_equal(result["real_features"], features["real"].numpy())
            assert np.array_equal(result["fake_features"], features["fake"].numpy())
            assert "disagree on the feature extractor" in str(result["mismatch"])
    assert fid > 1.0  # two different digit subsets: a real, non-trivial distance


@pytest.mark.slow
def test_torchrun_fid_command_matches_one_process(tmp_path):
    """``torchrun --nproc_per_node 2 -m ganbench fid`` against ``python -m ganbench fid`` (with KID)."""
    real, fake = sample_sets()
    paths = []
    for name, images in (("real", real), ("fake", fake)):
        paths.append(tmp_path / f"{name}.npz")
        np.savez(paths[-1], images=images[:, 0].numpy())
    args = ["-m", "ganbench", "fid", *map(str, paths), "--features", "mnist", "--batch-size", str(BATCH),
            "--kid", "--kid-subsets", "10", "--kid-subset-size", "100", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    results = []
    for command in ([sys.executable, *args],
                    [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), *args]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))  # only rank 0 prints
    single, multi = results
    assert abs(multi["fid"] - single["fid"]) <= 1e-9 * single["fid"]
    assert (multi["n_a"], multi["n_b"]) == (N_REAL, N_FAKE)
    assert abs(multi["kid_mean"] - single["kid_mean"]) <= 1e-9 * abs(single["kid_mean"])
