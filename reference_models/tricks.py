"""The GAN training tricks of seed 003, each switched on by a config option.

============================== ====================================== ======================================
trick                          config                                 applied by
============================== ====================================== ======================================
one-sided label smoothing      ``tricks.label_smoothing``             ``engine.Adversary``
n critic / n generator steps   ``train.n_critic``, ``train.n_gen``    ``engine.Trainer``
Xavier / He / N(0, 0.02) init  ``tricks.init``                        :func:`init_weights` (``build``)
LR schedules                   ``[lr_schedule]``                      :func:`lr_factor` (``engine.Trainer``)
experience replay of fakes     ``tricks.replay_*``                    :class:`ReplayBuffer`
dropout in D                   ``tricks.d_dropout``                   the model builders
instance noise                 ``tricks.instance_noise(_steps)``      :func:`instance_noise_std`
L2 weight penalty on D         ``tricks.d_weight_penalty``            :func:`weight_penalty`
progressive resolution         ``[tricks.progressive]``               :class:`ProgressiveSchedule`
moving average of G's weights  ``tricks.ema``                         :class:`WeightAverage`
============================== ====================================== ======================================

The last one is not in seed 003: an exponential moving average of the generator's weights (Yazıcı et
al., ICLR 2019; used by Karras et al. for ProGAN/StyleGAN), kept beside the trained weights and used for
sample grids and evaluation. It smooths out the oscillation of short, high-learning-rate CPU runs.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import ConfigError

__all__ = [
    "LR_SCHEDULES",
    "lr_factor",
    "instance_noise_std",
    "ReplayBuffer",
    "INIT_SCHEMES",
    "init_weights",
    "weight_penalty",
    "ProgressiveSchedule",
    "WeightAverage",
]


# ---
# Learning-rate schedules: the factor that multiplies each optimizer's base learning rate at a step.


def _warmup(step: int, warmup_steps: int) -> float:
    """Linear warm-up ``(step + 1) / warmup_steps`` (1 after the warm-up)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def time_decay(step: int, decay: float) -> float:
    """``1 / (1 + decay * step)`` (seed 003's "time decay")."""
    return 1.0 / (1.0 + decay * step)


def exponential(step: int, decay: float) -> float:
    """``exp(-decay * step)``."""
    return math.exp(-decay * step)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_factor: float) -> float:
    """Linear warm-up, then a half cosine from 1 down to ``min_factor`` at ``total_steps``."""
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cyclic(step: int, warmup_steps: int, cycle_steps: int, min_factor: float) -> float:
    """Linear warm-up, then a triangle wave 1 -> ``min_factor`` -> 1 every ``cycle_steps``."""
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    phase = ((step - warmup_steps) % cycle_steps) / cycle_steps
    return min_factor + (1.0 - min_factor) * abs(1.0 - 2.0 * phase)


LR_SCHEDULES = ("constant", "time_decay", "exponential", "warmup_cosine", "warmup_cyclic")


def lr_factor(schedule: dict, step: int, total_steps: int) -> float:
    """The factor of the ``[lr_schedule]`` table ``schedule`` at ``step`` (0-based) of ``total_steps``."""
    name = schedule["name"]
    if name == "constant":
        return 1.0
    if name == "time_decay":
        return time_decay(step, schedule["decay"])
    if name == "exponential":
        return exponential(step, schedule["decay"])
    if name == "warmup_cosine":
        return warmup_cosine(step, total_steps, schedule["warmup_steps"], schedule["min_factor"])
    if name == "warmup_cyclic":
        if schedule["cycle_steps"] < 1:
            raise ConfigError(f"lr_schedule.cycle_steps must be at least 1, got {schedule['cycle_steps']}")
        return warmup_cyclic(step, schedule["warmup_steps"], schedule["cycle_steps"], schedule["min_factor"])
    raise ConfigError(f"unknown lr_schedule.name {name!r} (known: {', '.join(LR_SCHEDULES)})")


# ---
# Instance noise (Sønderby et al. 2017; seed 003's "noise injection").


def instance_noise_std(step: int, start: float, decay_steps: int) -> float:
    """Std of the Gaussian noise added to D's inputs: ``start`` decaying linearly to 0 at ``decay_steps``.

    ``decay_steps == 0`` keeps it constant.
    """
    if decay_steps == 0:
        return start
    return start * max(0.0, 1.0 - step / decay_steps)


# ---
# Experience replay of past fakes.


class ReplayBuffer:
    """A pool of past fake samples shown to D again (Shrivastava et al. 2017; CycleGAN's image pool).

    :meth:`exchange` takes a batch (a dict of tensors with one leading sample axis: images, and labels
    for a conditional D). While the pool holds fewer than ``capacity`` samples every sample is stored
    and returned; after that each sample, with probability ``prob``, is swapped for a random stored
    one (the stored one is returned, the new one takes its place), else returned as is.
    """

    def __init__(self, capacity: int, prob: float = 0.5):
        if capacity < 1 or not 0.0 <= prob <= 1.0:
            raise ConfigError(f"replay buffer needs capacity >= 1 and prob in [0, 1], got {capacity}, {prob}")
        self.capacity, self.prob = capacity, prob
        self.storage: dict[str, torch.Tensor] = {}
        self.count = 0

    def exchange(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Return the batch to show D, updating the pool (randomness from ``generator``)."""
        n = next(iter(batch.values())).shape[0]
        if not self.storage:
            self.storage = {k: v.new_empty((self.capacity, *v.shape[1:])) for k, v in batch.items()}
        coins = torch.rand(n, generator=generator).tolist()
        slots = torch.randint(self.capacity, (n,), generator=generator).tolist()
        out = {k: v.detach().clone() for k, v in batch.items()}
        for i in range(n):
            if self.count < self.capacity:
                for k, v in batch.items():
                    self.storage[k][self.count] = v[i].detach()
                self.count += 1
            elif coins[i] < self.prob:
                j = slots[i]
                for k, v in batch.items():
                    out[k][i] = self.storage[k][j]
                    self.storage[k][j] = v[i].detach()
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The stored samples (for checkpoints)."""
        return {k: v[: self.count] for k, v in self.storage.items()} if self.count else {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` returned."""
        self.storage, self.count = {}, 0
        if tensors:
            self.count = next(iter(tensors.values())).shape[0]
            for k, v in tensors.items():
                self.storage[k] = v.new_empty((self.capacity, *v.shape[1:]))
                self.storage[k][: self.count] = v


# ---
# Weight initialisation and the L2 weight penalty.

INIT_SCHEMES = ("torch", "xavier", "he", "normal")


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise every conv / transposed conv / linear layer of ``module`` in place; biases to 0.

    ``xavier``: Glorot uniform (Keras' and TensorFlow's default); ``he``: He normal, fan-in, gain
    sqrt(2); ``normal``: N(0, 0.02) (the DCGAN paper); ``torch``: leave PyTorch's default. Embeddings
    and normalisation layers are left to their modules.
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"unknown tricks.init {scheme!r} (known: {', '.join(INIT_SCHEMES)})")
    if scheme == "torch":
        return module
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(layer.weight)
        elif scheme == "he":
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        else:
            nn.init.normal_(layer.weight, 0.0, 0.02)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module


def weight_penalty(module: nn.Module) -> torch.Tensor:
    """Sum of the squares of ``module``'s trainable parameters (seed 003's L2 weight penalty)."""
    return sum(p.float().square().sum() for p in module.parameters() if p.requires_grad)


# ---
# Progressive resolution.


def at_resolution(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``images`` reduced to ``resolution`` pixels a side (average pooling), shown at full size (nearest)."""
    factor = images.shape[-1] // resolution
    if factor == 1:
        return images
    return F.interpolate(F.avg_pool2d(images, factor), scale_factor=factor, mode="nearest")


class ProgressiveSchedule:
    """Progressive resolution with fade-in, e.g. 7 -> 14 -> 28 (seed 003; ProGAN's schedule).

    The networks keep their size; what grows is the resolution of what D sees: real and fake images
    are reduced to the current resolution (average pooling) and brought back to full size, so D first
    judges coarse shapes only and G learns them first. Resolution ``k`` starts at step ``k *
    phase_steps``; during its first ``fade_steps`` steps D sees ``alpha * at(res_k) + (1 - alpha) *
    at(res_{k-1})`` with ``alpha`` rising linearly from 0 to 1.
    """

    def __init__(self, resolutions, phase_steps: int, fade_steps: int):
        resolutions = [int(r) for r in resolutions]
        if len(resolutions) < 2 or any(b <= a for a, b in zip(resolutions, resolutions[1:], strict=False)):
            raise ConfigError(
                f"tricks.progressive.resolutions must rise, e.g. [7, 14, 28], got {resolutions}"
            )
        if phase_steps < 1 or not 0 <= fade_steps <= phase_steps:
            raise ConfigError(
                f"tricks.progressive needs phase_steps >= 1 and 0 <= fade_steps <= phase_steps, got "
                f"{phase_steps}, {fade_steps}"
            )
        self.resolutions, self.phase_steps, self.fade_steps = resolutions, phase_steps, fade_steps

    def state(self, step: int) -> tuple[int, int, float]:
        """``(resolution, previous resolution, alpha)`` at ``step``."""
        stage = min(step // self.phase_steps, len(self.resolutions) - 1)
        if stage == 0:
            return self.resolutions[0], self.resolutions[0], 1.0
        into = step - stage * self.phase_steps
        alpha = 1.0 if into >= self.fade_steps else into / self.fade_steps
        return self.resolutions[stage], self.resolutions[stage - 1], alpha

    def apply(self, images: torch.Tensor, step: int) -> torch.Tensor:
        """``images`` ``(N, C, S, S)`` as D sees them at ``step``."""
        size = images.shape[-1]
        if images.shape[-2] != size or any(size % r for r in self.resolutions):
            raise ConfigError(
                f"tricks.progressive.resolutions {self.resolutions} must divide the square image size, "
                f"got images of shape {tuple(images.shape)}"
            )
        resolution, previous, alpha = self.state(step)
        shown = at_resolution(images, resolution)
        if alpha < 1.0:
            shown = alpha * shown + (1.0 - alpha) * at_resolution(images, previous)
        return shown


# ---
# Exponential moving average of the generator's weights.


class WeightAverage:
    """Moving averages of the weights (and float buffers) of some networks, e.g. the generator's.

    After each update, ``average <- d * average + (1 - d) * weight`` with ``d = min(decay, (1 + n) /
    (10 + n))`` at the ``n``-th update (the warm-up keeps the initial random weights from lingering);
    integer buffers (BatchNorm's batch counter) are copied. Tensors are named ``"<network>.<state key>"``,
    like the model's own ``state_dict`` keys, so :meth:`state_tensors` loads into the model as is.

    Args:
        networks: ``{name: module}``, the modules whose weights are averaged.
        decay: ``d`` in ``(0, 1)``, e.g. 0.999.
    """

    def __init__(self, networks: dict[str, nn.Module], decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"tricks.ema must be in (0, 1) (or 0: off), got {decay}")
        self.decay, self.updates = decay, 0
        # The networks' own tensors, looked up once: training and loading update them in place.
        self.live = {f"{name}.{k}": v for name, net in networks.items() for k, v in net.state_dict().items()}
        self.average = {key: value.detach().clone() for key, value in self.live.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the networks' current weights into the averages."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in self.live.items():
            if value.is_floating_point():
                self.average[key].lerp_(value, 1.0 - decay)
            else:
                self.average[key].copy_(value)
        self.updates += 1

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The averages and the update count (for checkpoints)."""
        return {**self.average, "updates": torch.tensor(self.updates, dtype=torch.int64)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_tensors`."""
        missing = set(self.average) - set(tensors)
        if missing:
            raise KeyError(f"moving averages missing for {sorted(missing)[:5]}")
        for key, value in self.average.items():
            value.copy_(tensors[key])
        self.updates = int(tensors["updates"])

    @contextlib.contextmanager
    def swapped_in(self):
        """Within the block the networks hold the averaged weights; their own come back after."""
        saved = {key: value.detach().clone() for key, value in self.live.items()}
        self._load(self.average)
        try:
            yield
        finally:
            self._load(saved)

    @torch.no_grad()
    def _load(self, tensors: dict[str, torch.Tensor]) -> None:
        for key, value in self.live.items():
            value.copy_(tensors[key])
