"""Multi-process evaluation: shard feature extraction across processes, merge exact statistics.

Run any evaluation under ``torchrun`` and every process takes a contiguous, batch-aligned shard of
the images, extracts its features, and the float64 sufficient statistics (``sum x``, ``sum x x^T``,
``n``) are summed over processes with ``torch.distributed.all_reduce``::

    torchrun --nproc_per_node 4 -m ganbench fid real/ fake/            # 4 GPUs (or 4 CPU processes)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 -m ganbench fid real/ fake/        # 2 nodes x 8 GPUs

Because shards are whole batches of the single-process batching, each image goes through the
network in the same batch as in a single process; only the float64 summation order changes, so the
FID equals the single-process FID to ~1e-12 relative. Features that KID and precision/recall need are
gathered back in the original order (:func:`gather_features`).

Outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) every helper is the identity: rank 0 of
1 process, the whole range as the shard, no communication. The backend is NCCL when CUDA is
available, gloo otherwise (CPU processes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from ganbench.errors import FeatureMismatchError
from ganbench.metrics.frechet import FeatureStats

__all__ = [
    "from_env",
    "init_from_env",
    "is_distributed",
    "rank",
    "world_size",
    "local_rank",
    "is_main_process",
    "default_device",
    "shard_range",
    "extract_features_sharded",
    "all_reduce_stats",
    "gather_features",
    "print_main",
    "barrier",
]


# --------------------------------------------------------------------------- process group


def _env_world_size() -> int:
    """``WORLD_SIZE`` as set by ``torchrun`` (1 when absent)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group described by torchrun's environment variables, if there is one.

    Does nothing (returns ``False``) when ``WORLD_SIZE`` is absent or 1, or when a process group is
    already initialised (then the caller owns it). Otherwise initialises it with ``backend`` (default:
    ``"nccl"`` with CUDA, ``"gloo"`` without), selects this process's GPU, and returns ``True``: the
    caller then ends it with ``torch.distributed.destroy_process_group()`` (or uses :func:`from_env`).
    """
    if _env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


@contextmanager
def from_env(backend: str | None = None) -> Iterator[bool]:
    """Context manager around :func:`init_from_env`; yields :func:`is_distributed` and ends the group
    it started (a group started by the caller is left alone)."""
    started = init_from_env(backend)
    try:
        yield is_distributed()
    finally:
        if started:
            dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's rank on its node (torchrun's ``LOCAL_RANK``; 0 when absent)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0: the process that prints and writes files."""
    return rank() == 0


def default_device(requested: str | torch.device | None = None) -> str | torch.device | None:
    """``requested`` when given; else this process's GPU (``cuda:LOCAL_RANK``) under a distributed
    run with CUDA; else ``None`` (the extractor's current device, normally the CPU)."""
    if requested is not None:
        return requested
    if is_distributed() and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return None


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if is_distributed():
        dist.barrier()


def print_main(*args, **kwargs) -> None:
    """``print`` on rank 0 only."""
    if is_main_process():
        print(*args, **kwargs)


def _comm_device() -> torch.device:
    """Where tensors must be for collectives: the current GPU with NCCL, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------- sharding


def shard_range(
    n: int, batch_size: int = 1, process_rank: int | None = None, num_processes: int | None = None
) -> range:
    """The indices ``range(start, stop)`` of ``n`` items that process ``process_rank`` of
    ``num_processes`` handles.

    Shards are contiguous, follow the rank order and consist of whole batches of ``batch_size`` (the
    batches a single process would run), spread as evenly as possible; a process may get an empty
    range when there are fewer batches than processes. The defaults are this process's rank and
    the world size.
    """
    process_rank = rank() if process_rank is None else process_rank
    num_processes = world_size() if num_processes is None else num_processes
    if n < 0 or batch_size < 1 or not 0 <= process_rank < num_processes:
        raise ValueError(
            f"need n >= 0, batch_size >= 1 and 0 <= rank < processes; got n={n}, "
            f"batch_size={batch_size}, rank={process_rank}, processes={num_processes}"
        )
    batches = -(-n // batch_size)
    first = batches * process_rank // num_processes
    last = batches * (process_rank + 1) // num_processes
    return range(min(first * batch_size, n), min(last * batch_size, n))


def extract_features_sharded(
    extractor,
    images,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """This process's features of ``images`` (an indexable ``uint8`` ``(N, C, H, W)`` tensor or array).

    The shard is :func:`shard_range` ``(len(images), batch_size)``; the batches are those of
    :func:`ganbench.features.inception.extract_features` on all images. Returns ``(n_shard, dim)``
    float32 on the CPU (``(0, dim)`` for an empty shard); the bar shows on rank 0 only.
    """
    from ganbench.features.inception import extract_features

    shard = shard_range(len(images), batch_size)
    if len(shard) == 0:
        return torch.empty(0, extractor.dim, dtype=torch.float32)
    return extract_features(
        extractor,
        images[shard.start : shard.stop],
        batch_size=batch_size,
        device=default_device(device),
        progress=progress and is_main_process(),
    )


# --------------------------------------------------------------------------- collectives


def _check_same_everywhere(value: str, what: str) -> None:
    """Raise :class:`FeatureMismatchError` unless every process holds the same ``value``."""
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    if len(set(values)) > 1:
        raise FeatureMismatchError(f"processes disagree on the {what}: {values}")


def all_reduce_stats(stats: FeatureStats) -> FeatureStats:
    """Statistics of the union of every process's samples (returned on every process).

    Sums ``sum x``, ``sum x x^T`` (float64) and ``n`` (int64) over processes; the extractor ids and
    dimensions must agree (:class:`FeatureMismatchError`). Outside a process group, returns ``stats``.
    """
    if not is_distributed():
        return stats
    if not stats.mergeable:
        raise FeatureMismatchError("cannot all-reduce statistics without a sample count (mu/sigma only)")
    _check_same_everywhere(f"{stats.extractor_id}|{stats.dim}", "feature extractor id|dimension")
    device = _comm_device()
    feature_sum = torch.from_numpy(stats.feature_sum).to(device)
    outer_sum = torch.from_numpy(stats.outer_sum).to(device)
    count = torch.tensor([stats.n], dtype=torch.int64, device=device)
    for tensor in (feature_sum, outer_sum, count):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return FeatureStats.from_sums(
        feature_sum.cpu().numpy(), outer_sum.cpu().numpy(), int(count.item()), stats.extractor_id
    )


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``(n_i, dim)`` features in rank order (on every process, CPU).

    With the shards of :func:`shard_range` this restores the original sample order, which seeded
    KID subsets and precision/recall depend on. Outside a process group, returns ``features``.
    """
    if not is_distributed():
        return features
    device = _comm_device()
    local = features.to(device).contiguous()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    sizes = [int(s.item()) for s in sizes]
    padded = torch.zeros((max(sizes), *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return torch.cat([chunk[:size] for chunk, size in zip(gathered, sizes)]).cpu()
