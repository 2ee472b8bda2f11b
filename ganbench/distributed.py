"""Multi-process evaluation and training: the one home of ``torch.distributed`` in ganbench.

Evaluation shards feature extraction across processes and merges exact statistics; training
(:class:`reference_models.engine.Trainer` under ``torchrun``) averages gradients over processes
with the collectives at the end of this module (see "Training" below).

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

Training::

    torchrun --nproc_per_node 2 -m ganbench train dcgan --config cpu --out runs/dcgan-ddp

Every process trains on its own slice of each global batch with its own noise stream
(:func:`rank_seed`); after each backward pass :func:`all_reduce_gradients` averages the updated
player's gradients, so every process takes the same optimizer step and the weights stay identical,
and :func:`broadcast_tensors` copies rank 0's buffers (BatchNorm running statistics) to the others.

Outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) every helper is the identity: rank 0 of
1 process, the whole range as the shard, no communication. The backend is NCCL when CUDA is
available, gloo otherwise (CPU processes); collectives give up after ``timeout`` seconds (default:
torch's, 30 minutes for gloo, 10 for NCCL), so a process that dies or stalls does not hang the others
for ever (``torchrun`` also stops every process when one fails).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
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
    "rank_seed",
    "broadcast_tensors",
    "all_reduce_gradients",
    "all_reduce_mean",
    "gather_to_main",
]


# --------------------------------------------------------------------------- process group


def _env_world_size() -> int:
    """``WORLD_SIZE`` as set by ``torchrun`` (1 when absent)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(backend: str | None = None, timeout: float | None = None) -> bool:
    """Join the process group described by torchrun's environment variables, if there is one.

    Does nothing (returns ``False``) when ``WORLD_SIZE`` is absent or 1, or when a process group is
    already initialised (then the caller owns it). Otherwise initialises it with ``backend`` (default:
    ``"nccl"`` with CUDA, ``"gloo"`` without) and ``timeout`` (seconds a collective waits for the other
    processes before raising; ``None``: torch's default), selects this process's GPU, and returns
    ``True``: the caller then ends it with ``torch.distributed.destroy_process_group()`` (or uses
    :func:`from_env`).
    """
    if _env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=None if timeout is None else timedelta(seconds=timeout))
    return True


@contextmanager
def from_env(backend: str | None = None, timeout: float | None = None) -> Iterator[bool]:
    """Context manager around :func:`init_from_env`; yields :func:`is_distributed` and ends the group
    it started (a group started by the caller is left alone)."""
    started = init_from_env(backend, timeout)
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
    from ganbench.features.base import extract_features

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


# --------------------------------------------------------------------------- training


def rank_seed(seed: int, process_rank: int | None = None) -> int:
    """The seed of process ``process_rank``'s random streams (noise, dropout) in a run seeded ``seed``.

    Rank 0 keeps ``seed`` itself, so it draws exactly what a single process would; rank ``r > 0`` gets
    a 32-bit seed derived from ``(seed, r)`` by :class:`numpy.random.SeedSequence` (deterministic,
    and unrelated to the seeds of other runs and ranks). The default rank is this process's.
    """
    process_rank = rank() if process_rank is None else process_rank
    if process_rank == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**64, process_rank]).generate_state(1)[0])


def _coalesced(tensors: list[torch.Tensor], collective) -> None:
    """Run the in-place ``collective(flat)`` on ``tensors`` flattened into one buffer per dtype and
    device (one call instead of one per tensor), then copy the result back into ``tensors``."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        collective(flat)
        offset = 0
        for tensor in group:
            tensor.copy_(flat[offset : offset + tensor.numel()].view(tensor.shape))
            offset += tensor.numel()


@torch.no_grad()
def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` (parameters, buffers) on every process with process ``src``'s values.

    The engine calls it on the model's buffers after every update: like DDP's ``broadcast_buffers``,
    rank 0's BatchNorm running statistics are the ones every process holds (and checkpoints keep).
    No-op outside a process group.
    """
    if is_distributed():
        _coalesced([t.detach() for t in tensors], lambda flat: dist.broadcast(flat, src))


@torch.no_grad()
def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of ``parameters`` over processes, in place (no-op outside a process group).

    This is what ``DistributedDataParallel`` does during the backward pass, done explicitly after it:
    it works for every model of the engine as it is, whatever the model does in a step, including
    several forward passes of one network before a backward (real and fake batches, CycleGAN's
    cycles), a frozen player's network inside the other player's loss, and the WGAN-GP gradient
    penalty's double backward (``create_graph=True``), none of which DDP's gradient hooks support
    without extra care. The cost is that communication does not overlap the backward pass (one
    all-reduce per dtype per update), negligible for these networks.

    A parameter with no gradient on any process keeps ``grad = None`` (so optimizers skip it as in a
    single process); one with a gradient on some processes only gets the average with zeros elsewhere,
    as in DDP.
    """
    if not is_distributed():
        return
    parameters = list(parameters)
    if not parameters:
        return
    device = parameters[0].device
    has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32, device=device)
    dist.all_reduce(has_grad)
    grads = []
    for p, anywhere in zip(parameters, has_grad.tolist(), strict=True):
        if anywhere and p.grad is None:
            p.grad = torch.zeros_like(p)
        if anywhere:
            grads.append(p.grad)
    scale = 1.0 / world_size()
    _coalesced(grads, lambda flat: dist.all_reduce(flat.mul_(scale)))


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over processes (``values`` itself outside a process group).

    Computed in float64; the result is on the CPU. The engine averages the logged losses and the
    loss it checks for divergence, so every process stops together when any one diverges.
    """
    if not is_distributed():
        return values
    total = values.detach().to(_comm_device(), torch.float64, copy=True)
    dist.all_reduce(total)
    return total.cpu() / world_size()


def gather_to_main(obj) -> list:
    """Every process's picklable ``obj`` in rank order on rank 0, ``[]`` on the others (``[obj]``
    outside a process group). For per-process training state (RNG states, replay pools) that rank 0
    writes into a checkpoint; tensors should be on the CPU."""
    if not is_distributed():
        return [obj]
    gathered = [None] * world_size() if is_main_process() else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered or []
