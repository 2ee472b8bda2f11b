"""The one training engine of the reference models, and the interface every model implements.

The model interface
===================

A model is a :class:`GANModel`: an ``nn.Module`` that owns its networks and turns a batch into losses.
The engine owns everything else (data, optimizers, schedules, precision, checkpoints, logging), so
every model gets resume, divergence checks, sample grids and the tricks for free. A model declares:

``players``
    ``{"G" and/or "D": names of the submodules that player updates}``. The engine makes one
    optimizer per player from ``[optim.<player>]``; player ``"D"`` is updated ``train.n_critic``
    times a step with :meth:`GANModel.discriminator_loss`, player ``"G"`` ``train.n_gen`` times with
    :meth:`GANModel.generator_loss`. While one player is updated the other's parameters are frozen.
``update_order``
    the order of the players within a step (default ``("D", "G")``). The first player's updates draw
    a new batch each (``train.batch_per = "update"``) or one batch serves the whole step (``"step"``);
    later players reuse the last batch.
``discriminator_loss(batch, ctx)``, ``generator_loss(batch, ctx)`` -> :class:`LossTerms`
    ``batch`` is a dict of tensors on the device (see :mod:`reference_models.datasets`), ``ctx`` a
    :class:`StepContext` (step number and the random generator for noise). ``LossTerms.total`` is
    back-propagated; ``LossTerms.parts`` are logged as ``"<player>/<part>"``.
``preview_inputs(dataset, n, generator)``, ``preview(inputs)``, ``grid_columns(n)``
    fixed inputs made once per run (noise, or a few validation images), and the ``(N, C, H, W)``
    images in ``[-1, 1]`` drawn from them into the sample grids (called in eval mode, no grad).
``sample(n, generator)``
    ``n`` new images for ``ganbench sample`` (models that translate input images may refuse).

Discriminators are wrapped in an :class:`Adversary`: the network plus its adversarial loss
(:mod:`reference_models.losses`) and the D-side tricks of :mod:`reference_models.tricks` (label
smoothing, instance noise, replay of past fakes, L2 weight penalty, progressive resolution, WGAN
weight clipping, the gradient penalty), all read from the config by :meth:`Adversary.from_config`. A
model calls ``adversary.discriminator_loss(real, fake, ctx)`` and ``adversary.generator_loss(fake,
ctx)`` and gets the tricks applied identically in every family. The three families:

1. **Unconditional / conditional image GANs** (``gan``, ``dcgan``, ``cgan``):
   :class:`~reference_models.image_gan.NoiseToImageModel`; players ``G``, ``D``; batches
   ``{"image", "label"}``; the conditional D gets the labels as ``cond``.
2. **Paired image-to-image GANs with a content loss** (SRGAN, DeblurGAN): players ``{"G": ("G",),
   "D": ("D",)}``; batches such as ``{"lr", "hr"}`` or ``{"blurred", "sharp"}``;
   ``discriminator_loss = self.D.discriminator_loss(target, G(input).detach(), ctx)``;
   ``generator_loss = content_weight * content(G(input), target) + adv_weight *
   self.D.generator_loss(G(input), ctx)`` with the content loss as a part. Content-only
   pre-training (SRResNet) declares ``players = {"G": ("G",)}`` and needs no ``[optim.D]``.
   DeblurGAN's five critic updates on one batch: ``train.n_critic = 5``, ``train.batch_per = "step"``.
   Its previews are a few fixed inputs shown as input / output / target (``grid_columns`` = 3);
   ``sample`` keeps the base class's refusal (it needs inputs, not noise).
3. **CycleGAN** (two G, two D, unpaired batches ``{"a", "b"}``): ``players = {"G": ("G_AB",
   "G_BA"), "D": ("D_A", "D_B")}`` (one optimizer over both generators and one over both
   discriminators, as in the official code), ``update_order = ("G", "D")``: the G update computes
   adversarial + cycle + identity losses and may keep its detached fakes for the D update that
   follows on the same batch; ``discriminator_loss`` sums ``D_A`` and ``D_B``'s
   ``discriminator_loss``. CycleGAN's image pool is ``tricks.replay_size = 50``,
   ``tricks.replay_prob = 0.5`` (each Adversary has its own pool).

A model module registers ``builder(config, **model_options) -> GANModel`` with
:func:`reference_models.registry.register_model` (the ``[model]`` keys are the options, so the
signature documents them), passes ``config["tricks"]["d_dropout"]`` to its discriminator, wraps it
with ``Adversary.from_config(net, config)``, and ships ``reference_models/configs/<model>/*.toml``
(``cpu``, ``paper``, ``tiny``). Its data set is registered by name in
:mod:`reference_models.datasets` (map-style, items are dicts of tensors, optional ``set_epoch``).
State outside ``state_dict()`` that training needs to resume goes through :meth:`GANModel.state_tensors`
(the Adversaries' replay pools already do).

The engine
==========

:class:`Trainer` runs a config: seeds torch, builds the model (:func:`~reference_models.registry.build`),
the data set and :class:`~reference_models.datasets.EpochSampler`, one optimizer per player, then for
each step sets the learning rates (``[lr_schedule]``) and runs the players' updates. Every loss is
checked: NaN, Inf or ``|loss| > train.max_abs_loss`` raises :class:`TrainingDivergedError` before the
optimizer step, naming the last good checkpoint (which is never overwritten by a bad state). Every
``log.every`` steps the losses, averaged over those steps, go to ``metrics.jsonl`` and the tqdm bar;
every ``log.sample_every`` a sample grid and the loss curves are drawn; every
``log.checkpoint_every`` (and at the end, or at ``train(stop_at=...)``) a checkpoint
(:mod:`reference_models.checkpoint`) holds the networks, optimizers, RNG states (global torch, CUDA,
the noise generator), the sampler position, the replay pools and the moving averages of ``tricks.ema``, so ``Trainer(..., resume=True)``
continues bit-exactly on CPU. On CUDA, ``train.amp`` runs the losses under bf16 autocast and
``train.channels_last`` uses the channels-last layout; both are no-ops on CPU.

Several processes (``torchrun``)
================================

Under a process group (``ganbench train`` under ``torchrun`` joins it with
:func:`ganbench.distributed.from_env`; NCCL on CUDA, gloo on the CPU) the Trainer trains data-parallel:

* ``data.batch_size`` is per process: the sampler draws global batches of ``batch_size x processes``
  from one shared permutation, and process ``r`` takes the ``r``-th slice, so an epoch still shows each
  sample once.
* Each process has its own noise generator and global torch RNG (dropout), seeded with
  :func:`ganbench.distributed.rank_seed` (rank 0 with ``train.seed``, like a single process).
* After each backward pass the updated player's gradients are averaged over processes
  (:func:`ganbench.distributed.all_reduce_gradients`; why not ``DistributedDataParallel``: see there),
  so every process takes the same optimizer step; after each update rank 0's buffers (BatchNorm
  statistics) are broadcast. The weights are the same on every process at every step.
* The loss checked for divergence and the logged losses are means over processes, so every process
  raises :class:`TrainingDivergedError` together.
* Only rank 0 writes files (:class:`~reference_models.outputs.RunOutput` is enabled on rank 0 only)
  and draws sample grids. A checkpoint holds the shared state once and each process's own RNG
  states and replay pools (``rank<r>.rng.*``, ``rank<r>.extra.*`` for ``r > 0``; rank 0's under the
  single-process names), so every process resumes from the same file, where it left off. Resuming
  needs the same number of processes.
"""

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ganbench import distributed
from ganbench.errors import CheckpointError, ConfigError, TrainingDivergedError
from ganbench.progress import quiet
from reference_models.checkpoint import (
    code_version,
    list_checkpoints,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    save_checkpoint,
)
from reference_models.config import resolve
from reference_models.datasets import EpochSampler, build_dataset, collate
from reference_models.losses import AdversarialLoss, build_loss, gradient_penalty
from reference_models.outputs import RunOutput, is_main_process, read_metrics
from reference_models.registry import build
from reference_models.tricks import (
    ProgressiveSchedule,
    ReplayBuffer,
    WeightAverage,
    instance_noise_std,
    lr_factor,
    weight_penalty,
)

__all__ = ["StepContext", "LossTerms", "Adversary", "GANModel", "Trainer", "build_optimizer", "load_trained"]

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


@dataclass
class StepContext:
    """What a loss needs to know about the current step.

    Attributes:
        step: 0-based index of the training step.
        total_steps: ``train.steps``.
        generator: CPU generator for every explicit random draw (noise, interpolation weights,
            replay choices); its state is checkpointed. Draw on the CPU and move to ``device``, so the
            same seed gives the same noise on every device.
        device: where the networks live.
    """

    step: int
    total_steps: int
    generator: torch.Generator
    device: torch.device

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal noise on ``device``."""
        return torch.randn(shape, generator=self.generator).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) noise on ``device``."""
        return torch.rand(shape, generator=self.generator).to(self.device)


@dataclass
class LossTerms:
    """A player's loss: ``total`` (back-propagated) and named ``parts`` (logged, detached)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class Adversary(nn.Module):
    """A discriminator with its adversarial loss and the discriminator-side tricks.

    Args:
        net: the discriminator; called ``net(x)``, or ``net(x, cond)`` when a condition is given.
        loss: the adversarial loss.
        label_smoothing: the real target becomes ``1 - label_smoothing`` (losses with targets only).
        instance_noise, instance_noise_steps: Gaussian noise of this std, decaying linearly to 0 over
            that many steps (0: constant), added to every input of D, real and fake, in both updates.
        replay_size, replay_prob: experience replay of past fakes (:class:`ReplayBuffer`; 0: off).
        weight_penalty: ``weight_penalty * sum(p^2)`` over D's parameters is added to D's loss.
        progressive: a :class:`ProgressiveSchedule` applied to every input of D, or ``None``.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: AdversarialLoss,
        *,
        label_smoothing: float = 0.0,
        instance_noise: float = 0.0,
        instance_noise_steps: int = 0,
        replay_size: int = 0,
        replay_prob: float = 0.5,
        weight_penalty: float = 0.0,
        progressive: ProgressiveSchedule | None = None,
    ):
        super().__init__()
        if label_smoothing and not loss.uses_targets:
            raise ConfigError(
                "label smoothing needs a loss with targets (minimax, nonsaturating, lsgan), "
                f"not {loss.name!r}"
            )
        self.net, self.loss = net, loss
        self.real_target = 1.0 - label_smoothing
        self.instance_noise, self.instance_noise_steps = instance_noise, instance_noise_steps
        self.replay = ReplayBuffer(replay_size, replay_prob) if replay_size else None
        self.weight_penalty = weight_penalty
        self.progressive = progressive

    @classmethod
    def from_config(cls, net: nn.Module, config: dict) -> "Adversary":
        """An Adversary with the config's ``[loss]`` and ``[tricks]``."""
        loss_options = {k: v for k, v in config["loss"].items() if k != "name"}
        tricks = config["tricks"]
        progressive = tricks["progressive"]
        return cls(
            net,
            build_loss(config["loss"]["name"], **loss_options),
            label_smoothing=tricks["label_smoothing"],
            instance_noise=tricks["instance_noise"],
            instance_noise_steps=tricks["instance_noise_steps"],
            replay_size=tricks["replay_size"],
            replay_prob=tricks["replay_prob"],
            weight_penalty=tricks["d_weight_penalty"],
            progressive=(
                ProgressiveSchedule(
                    progressive["resolutions"], progressive["phase_steps"], progressive["fade_steps"]
                )
                if progressive["resolutions"]
                else None
            ),
        )

    def noise_std(self, step: int) -> float:
        """The instance-noise std at ``step``."""
        return instance_noise_std(step, self.instance_noise, self.instance_noise_steps)

    def view(self, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """``images`` as D sees them at this step: at the progressive resolution, with instance noise."""
        if self.progressive is not None:
            images = self.progressive.apply(images, ctx.step)
        std = self.noise_std(ctx.step)
        if std > 0:
            images = images + std * ctx.randn(*images.shape).to(images.dtype)
        return images

    def _score(self, images: torch.Tensor, cond) -> torch.Tensor:
        return self.net(images) if cond is None else self.net(images, cond)

    def discriminator_loss(self, real, fake, ctx: StepContext, real_cond=None, fake_cond=None) -> LossTerms:
        """D's loss on a real and a fake batch (``fake`` is detached), tricks applied.

        Parts: ``adv`` (the loss proper), and ``gp`` / ``l2`` when those are on.
        """
        fake = fake.detach()
        if self.replay is not None:
            pooled = self.replay.exchange(
                {"x": fake} if fake_cond is None else {"x": fake, "c": fake_cond}, ctx.generator
            )
            fake, fake_cond = pooled["x"], pooled.get("c")
        real_view, fake_view = self.view(real, ctx), self.view(fake, ctx)
        adv = self.loss.discriminator(
            self._score(real_view, real_cond), self._score(fake_view, fake_cond), self.real_target
        )
        parts = {"adv": adv.detach()}
        total = adv
        if self.loss.gp_weight:
            epsilon = ctx.rand(real.shape[0], *([1] * (real.ndim - 1))).to(real.dtype)
            gp = gradient_penalty(lambda x: self._score(x, real_cond), real_view, fake_view, epsilon)
            total = total + self.loss.gp_weight * gp
            parts["gp"] = gp.detach()
        if self.weight_penalty:
            l2 = self.weight_penalty * weight_penalty(self.net)
            total = total + l2
            parts["l2"] = l2.detach()
        return LossTerms(total, parts)

    def generator_loss(self, fake: torch.Tensor, ctx: StepContext, cond=None) -> torch.Tensor:
        """G's adversarial loss on ``fake`` (gradients flow into G)."""
        return self.loss.generator(self._score(self.view(fake, ctx), cond))

    @torch.no_grad()
    def after_step(self) -> None:
        """WGAN's weight clipping after each D update."""
        clip = self.loss.weight_clip
        if clip is not None:
            for p in self.net.parameters():
                if p.requires_grad:
                    p.clamp_(-clip, clip)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The replay buffer's contents (checkpointed)."""
        return {f"replay.{k}": v for k, v in self.replay.state_tensors().items()} if self.replay else {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.replay is not None:
            self.replay.load_state_tensors(
                {k[len("replay.") :]: v for k, v in tensors.items() if k.startswith("replay.")}
            )


class GANModel(nn.Module):
    """Base class of every model the engine trains (see the module docstring for the contract)."""

    players: dict[str, tuple[str, ...]] = {"G": ("G",), "D": ("D",)}
    update_order: tuple[str, ...] = ("D", "G")

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        """Loss of player ``"D"``; models with a discriminator override it."""
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    def generator_loss(self, batch: dict, ctx: StepContext) -> LossTerms:
        """Loss of player ``"G"``."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def loss(self, player: str, batch: dict, ctx: StepContext) -> LossTerms:
        """The loss of ``player`` (``"D"`` or ``"G"``)."""
        return self.discriminator_loss(batch, ctx) if player == "D" else self.generator_loss(batch, ctx)

    def player_parameters(self, player: str) -> list[nn.Parameter]:
        """Trainable parameters updated by ``player``'s optimizer."""
        return [
            p for name in self.players[player] for p in getattr(self, name).parameters() if p.requires_grad
        ]

    def adversaries(self) -> list[tuple[str, Adversary]]:
        """``(name, Adversary)`` of every discriminator of the model."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, Adversary)]

    def after_discriminator_step(self) -> None:
        for _, adversary in self.adversaries():
            adversary.after_step()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Training state outside ``state_dict()`` (replay buffers), for checkpoints."""
        return {f"{name}.{k}": v for name, a in self.adversaries() for k, v in a.state_tensors().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, adversary in self.adversaries():
            adversary.load_state_tensors(
                {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
            )

    def preview_inputs(self, dataset, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Fixed CPU inputs of the sample grids (made once per run)."""
        raise NotImplementedError(f"{type(self).__name__} must define preview_inputs")

    def preview(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Grid images ``(N, C, H, W)`` in ``[-1, 1]`` from :meth:`preview_inputs` (on the device)."""
        raise NotImplementedError(f"{type(self).__name__} must define preview")

    def grid_columns(self, n: int) -> int:
        """Images per row of a sample grid of ``n``."""
        return math.ceil(math.sqrt(n))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` new images ``(n, C, H, W)`` in ``[-1, 1]``."""
        raise ConfigError(f"{type(self).__name__} translates input images; it cannot sample from noise")


def build_optimizer(options: dict, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """A torch optimizer from an ``[optim.<player>]`` table (``name`` + keyword arguments)."""
    options = dict(options)
    name = options.pop("name")
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    try:
        return OPTIMIZERS[name](parameters, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer {name!r} with {options}: {exc}") from None


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA device")
    if device.type == "cuda" and device.index is None and distributed.is_distributed():
        device = torch.device("cuda", distributed.local_rank())  # each process its own GPU
    return device


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Trainer:
    """Trains the model a config names, writing into ``out_dir`` (see the module docstring).

    Args:
        config: a full config (:func:`reference_models.config.load_config`).
        out_dir: the run folder.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``...); under a process group ``"cuda"`` is this
            process's GPU (``LOCAL_RANK``).
        resume: continue from the latest checkpoint in ``out_dir``; the config must equal the
            checkpoint's except for ``train.steps`` and ``[log]``.
        progress: show a tqdm bar.
    """

    def __init__(
        self, config: dict, out_dir, *, device: str = "cpu", resume: bool = False, progress: bool = True
    ):
        self.config = config
        train = config["train"]
        self.device = _device(device)
        self.total_steps = train["steps"]
        self.seed = train["seed"]
        self.progress = progress
        cuda = self.device.type == "cuda"
        self.amp = train["amp"] and cuda
        self.channels_last = train["channels_last"] and cuda

        torch.manual_seed(self.seed)
        self.model = build(config).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        distributed.broadcast_tensors(self.model.state_dict().values())  # every process starts alike
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        process_seed = distributed.rank_seed(self.seed)
        if process_seed != self.seed:
            torch.manual_seed(process_seed)
        self.noise = torch.Generator().manual_seed(process_seed)
        with quiet(not self.progress):
            self.dataset = build_dataset(config["data"])
        batch_size = config["data"]["batch_size"]
        if len(self.dataset) < batch_size * self.world_size:
            raise ConfigError(
                f"the data set has {len(self.dataset)} samples, fewer than data.batch_size x processes "
                f"= {batch_size} x {self.world_size}"
            )
        self.sampler = EpochSampler(len(self.dataset), batch_size * self.world_size, self.seed)
        self.shard = slice(self.rank * batch_size, (self.rank + 1) * batch_size)  # of each global batch
        self._set_epoch(0)

        missing = set(self.model.players) - set(config["optim"])
        extra = set(config["optim"]) - set(self.model.players)
        if missing or extra:
            raise ConfigError(
                f"model {config['model']['name']!r} has players {sorted(self.model.players)}: "
                f"[optim] tables missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        self.optimizers = {
            p: build_optimizer(config["optim"][p], self.model.player_parameters(p))
            for p in self.model.players
        }
        self.base_lrs = {p: [g["lr"] for g in opt.param_groups] for p, opt in self.optimizers.items()}
        if not set(self.model.players) <= {"G", "D"}:
            raise ValueError(f"{type(self.model).__name__}.players must be named 'G' and/or 'D'")
        self.order = [p for p in self.model.update_order if p in self.model.players]
        self.repeats = {"D": train["n_critic"], "G": train["n_gen"]}
        decay = config["tricks"]["ema"]
        generators = {name: getattr(self.model, name) for name in self.model.players.get("G", ())}
        self.ema = WeightAverage(generators, decay) if decay else None
        lr_factor(config["lr_schedule"], 0, self.total_steps)  # fail early on a bad schedule

        self.output = RunOutput(out_dir, enabled=is_main_process())
        self.step = 0
        self.history: list[dict] = []
        self.last_checkpoint: Path | None = None
        n_preview = config["log"]["n_samples"]
        preview = self.model.preview_inputs(
            self.dataset, n_preview, torch.Generator().manual_seed(self.seed + 1)
        )
        self.preview_inputs = self._to_device(preview)
        if resume:
            self._resume()
        elif list_checkpoints(self.output.checkpoint_dir):
            raise ConfigError(
                f"{self.output.root} already holds checkpoints: resume it (--resume) "
                "or use another run folder"
            )
        else:
            self.output.reset_metrics([])
        self.output.save_config(config)

    # ---
    # The loop.

    def train(self, stop_at: int | None = None) -> dict:
        """Train up to ``train.steps`` (or up to step ``stop_at``); returns the last metrics."""
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        log = self.config["log"]
        metrics: dict = {}
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"train {self.config['model']['name']}",
            unit="step",
            disable=not (self.progress and self.output.enabled),
        )
        self.model.train()
        sums: dict[str, torch.Tensor | float] = {}
        count = 0
        while self.step < end:
            parts = self._train_step()
            self.step += 1
            count += 1
            for key, value in parts.items():
                sums[key] = value if key.startswith("lr/") else sums.get(key, 0.0) + value
            bar.update(1)
            last = self.step == end
            if self.step % log["every"] == 0 or last:
                # Losses are averaged over the steps since the last record (and over processes);
                # learning rates are current.
                if distributed.is_distributed():
                    values = torch.tensor([float(v) for v in sums.values()], dtype=torch.float64)
                    means = distributed.all_reduce_mean(values)
                    sums = dict(zip(sums, means.tolist(), strict=True))
                metrics = {"step": self.step}
                metrics.update(
                    {k: float(v) if k.startswith("lr/") else float(v) / count for k, v in sums.items()}
                )
                sums, count = {}, 0
                self.history.append(metrics)
                self.output.append_metrics(metrics)
                bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if k.endswith("/loss")})
            if (self.step % log["sample_every"] == 0 or last) and self.output.enabled:
                self.write_samples()
            if self.step % log["checkpoint_every"] == 0 or last:
                self.save_checkpoint(metrics)
        bar.close()
        return metrics

    def _train_step(self) -> dict[str, torch.Tensor | float]:
        ctx = StepContext(self.step, self.total_steps, self.noise, self.device)
        factor = lr_factor(self.config["lr_schedule"], self.step, self.total_steps)
        parts: dict[str, torch.Tensor | float] = {}
        for player, optimizer in self.optimizers.items():
            for group, base in zip(optimizer.param_groups, self.base_lrs[player], strict=True):
                group["lr"] = base * factor
            parts[f"lr/{player}"] = optimizer.param_groups[0]["lr"]
        batch = None
        for player in self.order:
            for _ in range(self.repeats[player]):
                fresh = player == self.order[0] and self.config["train"]["batch_per"] == "update"
                if batch is None or fresh:
                    batch = self._next_batch()
                terms = self._update(player, batch, ctx)
                parts[f"{player}/loss"] = terms.total.detach()
                parts.update({f"{player}/{k}": v for k, v in terms.parts.items()})
        return parts

    def _update(self, player: str, batch: dict, ctx: StepContext) -> LossTerms:
        """One optimizer step of ``player`` (the other players' parameters frozen meanwhile)."""
        optimizer = self.optimizers[player]
        frozen = [
            p for other in self.optimizers if other != player for p in self.model.player_parameters(other)
        ]
        for p in frozen:
            p.requires_grad_(False)
        try:
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                terms = self.model.loss(player, batch, ctx)
            self._check_loss(player, terms)
            terms.total.backward()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        distributed.all_reduce_gradients(self.model.player_parameters(player))
        optimizer.step()
        if player == "D":
            self.model.after_discriminator_step()
        distributed.broadcast_tensors(self.model.buffers())
        if player == "G" and self.ema is not None:
            self.ema.update()
        return terms

    def _check_loss(self, player: str, terms: LossTerms) -> None:
        value = float(distributed.all_reduce_mean(terms.total.detach()))  # every process decides alike
        limit = self.config["train"]["max_abs_loss"]
        if math.isfinite(value) and abs(value) <= limit:
            return
        parts = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.parts.items())
        mean = f" (mean over {self.world_size} processes)" if self.world_size > 1 else ""
        raise TrainingDivergedError(
            f"training diverged at step {self.step + 1}: the {player} loss{mean} is {value:.4g} "
            f"({'not finite' if not math.isfinite(value) else f'beyond train.max_abs_loss = {limit:g}'}"
            f"{'; ' + parts if parts else ''}). Training stopped; last good checkpoint: "
            f"{self.last_checkpoint or 'none written yet'}. Try a lower learning rate or another loss."
        )

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    def _to_device(self, batch: dict) -> dict:
        out = {}
        for key, value in batch.items():
            value = value.to(self.device, non_blocking=True)
            if self.channels_last and value.ndim == 4:
                value = value.contiguous(memory_format=torch.channels_last)
            out[key] = value
        return out

    def _set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def _next_batch(self) -> dict:
        indices, new_epoch = self.sampler.next_indices()
        if new_epoch:
            self._set_epoch(self.sampler.epoch)
        return self._to_device(collate(self.dataset, indices[self.shard]))

    # ---
    # Pictures and checkpoints.

    def write_samples(self) -> Path:
        """Draw the sample grid of the current step and the loss curves; returns the grid's path."""
        was_training = self.model.training
        self.model.eval()
        averaged = self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()
        with torch.no_grad(), self._autocast(), averaged:
            images = self.model.preview(self.preview_inputs)
        self.model.train(was_training)
        path = self.output.save_samples(
            images.float().cpu(), self.step, self.model.grid_columns(images.shape[0])
        )
        self.output.save_curves(self.history)
        return path

    def _process_tensors(self) -> dict[str, torch.Tensor]:
        """This process's own training state: its RNG states and the model's extra tensors (replay pools)."""
        tensors = {"rng.torch": torch.get_rng_state(), "rng.noise": self.noise.get_state()}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors.update({f"extra.{k}": v for k, v in self.model.state_tensors().items()})
        return tensors

    def _process_prefix(self) -> str:
        """Where this process's own tensors are in a checkpoint: rank 0 (or a single process) under
        ``rng.*`` / ``extra.*``, rank ``r`` under ``rank<r>.rng.*`` / ``rank<r>.extra.*``."""
        return f"rank{self.rank}." if self.rank else ""

    def save_checkpoint(self, metrics: dict) -> Path:
        """Checkpoint the current state (refusing non-finite weights); returns the record's path."""
        state = self.model.state_dict()
        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise TrainingDivergedError(
                f"training diverged by step {self.step}: non-finite values in {bad[:5]}; not checkpointed. "
                f"Last good checkpoint: {self.last_checkpoint or 'none written yet'}"
            )
        tensors = {f"model.{k}": v for k, v in state.items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_tensors().items()})
        optimizers = {}
        for player, optimizer in self.optimizers.items():
            optim_tensors, optimizers[player] = optimizer_state(optimizer, f"optim.{player}")
            tensors.update(optim_tensors)
        own = self._process_tensors()
        tensors.update(own)
        gathered = distributed.gather_to_main({k: v.cpu() for k, v in own.items()} if self.rank else {})
        for process_rank, process_tensors in enumerate(gathered[1:], start=1):
            tensors.update({f"rank{process_rank}.{k}": v for k, v in process_tensors.items()})
        record = {
            "model": self.config["model"]["name"],
            "step": self.step,
            "seed": self.seed,
            "config": self.config,
            "data": {
                "name": self.config["data"]["name"],
                "options": {k: v for k, v in self.config["data"].items() if k != "name"},
                "size": len(self.dataset),
                "sampler": self.sampler.state_dict(),
            },
            "code_version": code_version(),
            "torch_version": torch.__version__,
            "device": str(self.device),
            "world_size": self.world_size,
            "metrics": metrics,
            "optimizers": optimizers,
        }
        self.last_checkpoint = self.output.save_checkpoint(
            self.step, tensors, record, self.config["log"]["keep_checkpoints"]
        )
        distributed.barrier()  # on return the checkpoint exists, for every process
        return self.last_checkpoint

    def _resume(self) -> None:
        if not list_checkpoints(self.output.checkpoint_dir):
            raise CheckpointError(f"nothing to resume: no checkpoint in {str(self.output.checkpoint_dir)!r}")
        checkpoint = load_checkpoint(self.output.checkpoint_dir)
        record = checkpoint.record
        mine, theirs = _flatten(self.config), _flatten(record["config"])
        differ = sorted(
            k
            for k in set(mine) | set(theirs)
            if mine.get(k) != theirs.get(k) and k != "train.steps" and not k.startswith("log.")
        )
        if differ:
            raise CheckpointError(
                f"cannot resume from {checkpoint.path}: the config differs in {differ} "
                "(only train.steps and [log] may change)"
            )
        written_by = record.get("world_size", 1)
        if written_by != self.world_size:
            raise CheckpointError(
                f"cannot resume from {checkpoint.path}: it was written by a run of {written_by} "
                f"process(es), this one has {self.world_size} (the batch size is per process)"
            )
        _load_model_state(self.model, checkpoint)
        if self.ema is not None:
            self.ema.load_state_tensors(checkpoint.tensors_with_prefix("ema."))
        for player, optimizer in self.optimizers.items():
            load_optimizer_state(
                optimizer, checkpoint.tensors_with_prefix(f"optim.{player}."), record["optimizers"][player]
            )
        prefix = self._process_prefix()
        rng = checkpoint.tensors_with_prefix(f"{prefix}rng.")
        torch.set_rng_state(rng["torch"])
        self.noise.set_state(rng["noise"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.model.load_state_tensors(checkpoint.tensors_with_prefix(f"{prefix}extra."))
        self.sampler.load_state_dict(record["data"]["sampler"])
        self._set_epoch(self.sampler.epoch)
        self.step = int(record["step"])
        self.history = [r for r in read_metrics(self.output.metrics_path) if r.get("step", 0) <= self.step]
        self.output.reset_metrics(self.history)
        self.last_checkpoint = checkpoint.path


def _load_model_state(model: GANModel, checkpoint) -> None:
    """Load the ``model.*`` tensors of a checkpoint into ``model``.

    Strict, except for a generator-only export (:func:`export_generator`), which must hold every
    tensor of the ``"G"`` player's networks and nothing else (the discriminators keep their init).
    """
    state = checkpoint.tensors_with_prefix("model.")
    try:
        if checkpoint.record.get("export") == "generator":
            missing, unexpected = model.load_state_dict(state, strict=False)
            generator_prefixes = tuple(f"{name}." for name in model.players["G"])
            missing_g = [k for k in missing if k.startswith(generator_prefixes)]
            if missing_g or unexpected:
                raise RuntimeError(f"missing generator tensors {missing_g[:5]}, unexpected {unexpected[:5]}")
        else:
            model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{checkpoint.path}: weights do not fit model {checkpoint.record['model']!r}: {exc}"
        ) from None


def load_trained(path, device: str = "cpu") -> tuple[GANModel, dict]:
    """The trained model of a checkpoint (record, tensor file or run folder), in eval mode, and its record.

    A run with ``tricks.ema`` gives its generator the moving-average weights (what its sample grids show
    and what is evaluated); the discriminators keep their trained weights.
    """
    checkpoint = load_checkpoint(path)
    record = checkpoint.record
    try:
        with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the caller's RNG
            model = build(resolve(record["config"]))
    except (ConfigError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"{checkpoint.path}: its config does not build a model: {exc}") from None
    _load_model_state(model, checkpoint)
    averaged = checkpoint.tensors_with_prefix("ema.")
    averaged.pop("updates", None)
    if averaged:
        model.load_state_dict(averaged, strict=False)
    return model.to(_device(device)).eval(), record


def export_generator(path, out_dir) -> Path:
    """Write a small, inference-only copy of a checkpoint: the generator networks' weights and the record.

    Optimizer, RNG and discriminator state are dropped (with ``tricks.ema``, the generator's weights
    are the moving averages), so the copy is a fraction of the training checkpoint's size (what
    ganbench ships); :func:`load_trained` reads it like any checkpoint, but it
    cannot resume training. Returns the new record's path.
    """
    model, record = load_trained(path)
    keep = tuple(f"{name}." for name in model.players["G"])
    tensors = {f"model.{k}": v for k, v in model.state_dict().items() if k.startswith(keep)}
    record = {k: v for k, v in record.items() if k not in ("format", "format_version", "tensors")}
    record["export"] = "generator"
    return save_checkpoint(out_dir, record["step"], tensors, record)
