"""Data-parallel training under torch.distributed (gloo, 2 CPU processes) against one process.

One pair of processes (``mp.spawn``, torchrun's environment variables) trains the tiny DCGAN straight
for 4 steps, and 2 + 2 steps with a resume in between; the tests then read what each process saved.
"""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import reference_models.outputs
from ganbench import distributed
from reference_models.checkpoint import list_checkpoints, load_checkpoint
from reference_models.config import load_config
from reference_models.engine import Trainer
from reference_models.outputs import read_metrics

STEPS = 4
# Replay pool and dropout: per-process state that a resume must restore on every process.
OVERRIDES = [
    f"train.steps={STEPS}",
    "log.every=1",
    "log.sample_every=2",
    "log.checkpoint_every=2",
    "tricks.replay_size=8",
    "tricks.d_dropout=0.2",
]
# The mean logged loss of each player over the run, DDP against one process: measured 1-2 % apart
# (two different global batches of the same init); 10 % still fails a run that went elsewhere.
LOSS_TOLERANCE = 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_group(process_rank: int, port: int) -> None:
    """torchrun's environment for process ``process_rank`` of 2, on one thread."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(process_rank),
                      LOCAL_RANK=str(process_rank), WORLD_SIZE="2")
    torch.set_num_threads(1)


def full_state(t: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor that defines where this process's training stands (copies)."""
    state = {f"model.{k}": v for k, v in t.model.state_dict().items()}
    for player, optimizer in t.optimizers.items():
        for index, entries in optimizer.state_dict()["state"].items():
            state.update({f"optim.{player}.{index}.{k}": v for k, v in entries.items()})
    state.update({f"extra.{k}": v for k, v in t.model.state_tensors().items()})
    state["rng.torch"], state["rng.noise"] = torch.get_rng_state(), t.noise.get_state()
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def _train_worker(process_rank: int, port: int, out: str) -> None:
    """Train straight, and in two halves with a resume; save this process's states and counts."""
    join_group(process_rank, port)
    out = Path(out)
    writes = []
    write_checkpoint = reference_models.outputs.save_checkpoint  # what RunOutput writes files with

    def counting(*args, **kwargs):
        writes.append(args[1])
        return write_checkpoint(*args, **kwargs)

    reference_models.outputs.save_checkpoint = counting
    config = load_config("dcgan", "tiny", OVERRIDES)
    with distributed.from_env(timeout=120) as active:
        assert active
        straight = Trainer(config, out / "straight", progress=False)
        straight.train()
        straight_state = full_state(straight)
        Trainer(config, out / "halves", progress=False).train(stop_at=2)
        torch.manual_seed(1234)  # resuming must restore every RNG, whatever happened meanwhile
        resumed = Trainer(config, out / "halves", resume=True, progress=False)
        resumed_at = resumed.step
        resumed.train()
        resumed_state = full_state(resumed)
        gradients = _averaged_gradients(process_rank)
    tensors = {f"straight.{k}": v for k, v in straight_state.items()}
    tensors.update({f"resumed.{k}": v for k, v in resumed_state.items()})
    tensors.update({f"gradients.{k}": v for k, v in gradients.items()})
    save_file(tensors, out / f"rank{process_rank}.safetensors")
    (out / f"rank{process_rank}.json").write_text(
        json.dumps({"checkpoint_writes": writes, "resumed_at": resumed_at, "final_step": resumed.step})
    )


def _averaged_gradients(process_rank: int) -> dict[str, torch.Tensor]:
    """all_reduce_gradients on a layer fed each process's own inputs, plus the expected averages.

    Parameter ``shared`` gets a gradient on both processes, ``rank1_only`` on process 1 only (so the
    average is half its gradient there, as in DDP), ``unused`` on neither (it must stay ``None``).
    """
    inputs = [torch.randn(5, 3, generator=torch.Generator().manual_seed(r)) for r in (0, 1)]
    shared, rank1_only, unused = (torch.nn.Parameter(torch.ones(3) * k) for k in (1.0, 2.0, 3.0))

    def gradients(r: int) -> list[torch.Tensor]:
        loss = (inputs[r] * shared).pow(2).sum() + (r == 1) * (inputs[r] * rank1_only).sum()
        return torch.autograd.grad(loss, [shared, rank1_only], allow_unused=True, materialize_grads=True)

    expected = [(a + b) / 2 for a, b in zip(gradients(0), gradients(1), strict=True)]
    shared.grad, rank1_only.grad = gradients(process_rank)
    if process_rank == 0:
        rank1_only.grad = None
    distributed.all_reduce_gradients([shared, rank1_only, unused])
    return {"shared": shared.grad, "shared_expected": expected[0], "rank1_only": rank1_only.grad,
            "rank1_only_expected": expected[1], "unused_is_none": torch.tensor(unused.grad is None)}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_train_worker, args=(free_port(), str(out)), nprocs=2, join=True)
    return out


def per_rank(out: Path, name: str) -> tuple[dict, dict]:
    """Rank 0's and rank 1's tensors under ``name.``."""
    ranks = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    return tuple({k[len(name) + 1 :]: v for k, v in t.items() if k.startswith(name + ".")} for t in ranks)


def test_only_rank_0_writes_and_each_file_once(ddp_run):
    counts = [json.loads((ddp_run / f"rank{r}.json").read_text())["checkpoint_writes"] for r in (0, 1)]
    assert counts == [[2, 4, 2, 4], []]  # straight: steps 2, 4; halves: 2, then 4 after the resume
    run = ddp_run / "straight"
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == [
        "config.json", "loss_curves.png", "metrics.jsonl", "step_00000002.json", "step_00000002.png",
        "step_00000002.safetensors", "step_00000004.json", "step_00000004.png", "step_00000004.safetensors",
    ]  # no temporary files left behind
    assert [m["step"] for m in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4]  # one writer
    checkpoint = load_checkpoint(run)
    assert checkpoint.record["world_size"] == 2
    own_state = {"rng.noise", "rng.torch", "extra.D.replay.x"}  # rank 1's too, under "rank1."
    assert own_state | {f"rank1.{k}" for k in own_state} <= set(checkpoint.tensors)


def test_processes_hold_identical_weights_but_draw_different_noise(ddp_run):
    rank0, rank1 = per_rank(ddp_run, "straight")
    shared = [k for k in rank0 if k.startswith(("model.", "optim."))]
    assert len(shared) > 20 and any(".running_mean" in k for k in shared)  # weights, moments, BN buffers
    worst = max(float((rank0[k].double() - rank1[k].double()).abs().max()) for k in shared)
    assert worst == 0.0
    assert not torch.equal(rank0["rng.noise"], rank1["rng.noise"])
    assert not torch.equal(rank0["extra.D.replay.x"], rank1["extra.D.replay.x"])  # each its own fakes
    # the single-process seed on rank 0, a derived one on rank 1
    assert distributed.rank_seed(0, 0) == 0 and distributed.rank_seed(0, 1) != 0


def test_gradients_are_averaged_over_processes(ddp_run):
    for rank in per_rank(ddp_run, "gradients"):
        torch.testing.assert_close(rank["shared"], rank["shared_expected"], rtol=1e-6, atol=0)
        torch.testing.assert_close(rank["rank1_only"], rank["rank1_only_expected"], rtol=1e-6, atol=0)
        assert bool(rank["unused_is_none"])


def test_logs_match_the_single_process_run_in_steps_keys_rates_and_loss_scale(ddp_run, tmp_path):
    """The 2-process log has the single-process run's steps, keys and rates, and losses on its scale.

    Four steps barely move the losses, so this is no check of learning (gradient averaging is checked
    above); it catches losses logged as sums over processes (2x) or from a wrong objective.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(load_config("dcgan", "tiny", OVERRIDES), tmp_path / "single", progress=False).train()
    finally:
        torch.set_num_threads(threads)
    single = read_metrics(tmp_path / "single" / "metrics.jsonl")
    ddp = read_metrics(ddp_run / "straight" / "metrics.jsonl")
    assert [m["step"] for m in ddp] == [m["step"] for m in single] == list(range(1, STEPS + 1))
    assert [sorted(m) for m in ddp] == [sorted(m) for m in single]
    for key in ("D/loss", "G/loss"):
        assert all(math.isfinite(m[key]) for m in ddp)
        ddp_mean = sum(m[key] for m in ddp) / STEPS
        single_mean = sum(m[key] for m in single) / STEPS
        assert abs(ddp_mean - single_mean) <= LOSS_TOLERANCE * abs(single_mean), (key, ddp_mean, single_mean)
    assert [m["lr/G"] for m in ddp] == [m["lr/G"] for m in single]


def test_resume_continues_from_the_checkpoint_on_every_process(ddp_run):
    pairs = zip(per_rank(ddp_run, "straight"), per_rank(ddp_run, "resumed"), strict=True)
    for process_rank, (straight, resumed) in enumerate(pairs):
        info = json.loads((ddp_run / f"rank{process_rank}.json").read_text())
        assert (info["resumed_at"], info["final_step"]) == (2, STEPS)
        assert straight.keys() == resumed.keys()
        different = [k for k in straight if not torch.equal(straight[k], resumed[k])]
        assert not different, f"rank {process_rank} differs after resume: {different[:5]}"
    assert [m["step"] for m in read_metrics(ddp_run / "halves" / "metrics.jsonl")] == [1, 2, 3, 4]


def test_torchrun_train_command_resumes_and_prints_once(ddp_run, tmp_path):
    """``torchrun --nproc_per_node 2 -m ganbench train --resume`` on the 2-process run's folder."""
    run = tmp_path / "run"
    shutil.copytree(ddp_run / "straight", run)
    sets = [arg for override in OVERRIDES[1:] for arg in ("--set", override)]
    command = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "ganbench", "train", "dcgan", "--config", "tiny", *sets,
               "--steps", str(STEPS + 1), "--out", str(run), "--resume", "--quiet", "--timeout", "120"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run folder:") == 1 and f"step {STEPS + 1}/{STEPS + 1}" in done.stdout
    assert [m["step"] for m in read_metrics(run / "metrics.jsonl")] == list(range(1, STEPS + 2))
    checkpoints = [p.name for p in list_checkpoints(run / "checkpoints")]
    assert checkpoints == ["step_00000004.json", "step_00000005.json"]
    assert load_checkpoint(run).record["world_size"] == 2


def _stalling_worker(process_rank: int, port: int, out: str) -> None:
    """Rank 1 joins and then stalls; rank 0 starts training and must give up after the timeout."""
    join_group(process_rank, port)
    with distributed.from_env(timeout=3):
        if process_rank == 1:
            time.sleep(120)
        Trainer(load_config("dcgan", "tiny", OVERRIDES), Path(out) / "stalled", progress=False).train()


def test_a_stalled_process_makes_the_others_fail_instead_of_hanging(tmp_path):
    start = time.monotonic()
    with pytest.raises(mp.ProcessRaisedException, match="(?i)timed out"):
        mp.spawn(_stalling_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    assert time.monotonic() - start < 60  # the timeout (3 s) plus start-up, not the stalled 120 s
    assert not list_checkpoints(tmp_path / "stalled" / "checkpoints")
