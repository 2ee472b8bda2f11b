"""Latency and throughput of a generator: warm-up, device synchronisation, many timed repeats.

:func:`measure` times ``fn(*inputs)`` under ``torch.inference_mode``: ``warmup`` untimed calls, then
at least ``repeats`` timed calls, continuing until ``min_time_s`` of timed calls have run (and stopping
after ``max_time_s`` once three calls are timed, however many repeats that left). Each call is
bracketed by a device synchronisation (CUDA), so the times are the real compute time. Reported:
median and 90th percentile in milliseconds, images per second at the median, and the peak memory the
calls added:

* CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated before (peak counter reset);
* CPU (Linux): the process' peak resident memory (``VmHWM``, reset through ``/proc/self/clear_refs``)
  above its resident memory before; ``None`` where that is not available.

:func:`profile_generator` does this for a generator at batch 1 and a throughput batch on the CPU and,
when there is one, the GPU, with parameters, output shape and the environment (device name, torch).
"""

from __future__ import annotations

import ctypes
import platform
import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["LatencyResult", "measure", "profile_generator", "environment", "available_devices"]

MIN_REPEATS = 3  # timed calls made even past max_time_s (a median and p90 need a few)
_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class LatencyResult:
    """Timing of one (device, batch size): milliseconds per call, images/s, peak memory (MiB)."""

    device: str
    batch_size: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    images_per_s: float
    peak_memory_mb: float | None
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)


def available_devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when torch sees a GPU."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _cpu_name() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def environment(device: str = "cpu") -> dict:
    """What the timings depend on: device name, torch version, CPU threads, CUDA version."""
    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = _cpu_name()
    return {
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resident_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _PROC_STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _release_free_heap() -> None:
    """Return the C heap's free memory to the system (glibc ``malloc_trim``); a no-op elsewhere."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _PeakMemory:
    """Peak memory added by the calls made inside the ``with`` block (MiB), or None if unknown."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb: float | None = None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            _release_free_heap()  # else allocations reuse resident freed memory and show no growth
            try:
                _PROC_CLEAR_REFS.write_text("5")  # resets VmHWM to the current resident size
                self.start = _resident_kib("VmRSS")
            except OSError:
                self.start = None
        return self

    def __exit__(self, *exc_info):
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.start is not None:
            peak = _resident_kib("VmHWM")
            self.peak_mb = None if peak is None else max(peak - self.start, 0) / 1024
        return False


def measure(
    fn,
    inputs: tuple,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 20,
    min_time_s: float = 0.5,
    max_time_s: float = 10.0,
) -> LatencyResult:
    """Time ``fn(*inputs)`` (inputs already on ``device``); see the module docstring."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    device = torch.device(device)
    batch_size = int(inputs[0].shape[0])
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*inputs)
        _synchronize(device)
        with _PeakMemory(device) as memory:
            started = time.perf_counter()
            while True:
                _synchronize(device)
                t0 = time.perf_counter()
                fn(*inputs)
                _synchronize(device)
                times.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - started
                enough = len(times) >= repeats and elapsed >= min_time_s
                if enough or (elapsed >= max_time_s and len(times) >= min(MIN_REPEATS, repeats)):
                    break
    median = statistics.median(times)
    return LatencyResult(
        device=str(device),
        batch_size=batch_size,
        median_ms=1e3 * median,
        p90_ms=1e3 * float(np.percentile(times, 90)),
        mean_ms=1e3 * statistics.fmean(times),
        images_per_s=batch_size / median,
        peak_memory_mb=memory.peak_mb,
        repeats=len(times),
    )


def profile_generator(
    generator, make_inputs, batch_sizes: tuple[int, ...] = (1, 64), devices: list[str] | None = None, **timing
) -> dict:
    """Parameters, output shape and :func:`measure` at each batch size on each device.

    ``make_inputs(generator, batch_size)`` returns inputs on the generator's device (e.g.
    :meth:`ganbench.tasks.base.Task.latency_inputs`). A generator without a network (a plain function such
    as bicubic) is timed on the CPU only. The generator is moved back to its device afterwards.
    Returns ``{"parameters", "output_shape", "environments", "runs": [LatencyResult dicts]}``.
    """
    home = generator.device
    devices = devices or available_devices()
    if generator.module is None:
        devices = [d for d in devices if torch.device(d).type == "cpu"]
    runs, environments, output_shape = [], {}, None
    try:
        for device in devices:
            generator.to(device)
            environments[device] = environment(device)
            for batch_size in batch_sizes:
                inputs = make_inputs(generator, batch_size)
                if output_shape is None:
                    with torch.inference_mode():
                        output_shape = list(generator(*inputs).shape)
                runs.append(measure(generator, inputs, device, **timing).to_dict())
    finally:
        generator.to(home)
    return {
        "parameters": generator.num_parameters(),
        "output_shape": output_shape,
        "environments": environments,
        "runs": runs,
    }
