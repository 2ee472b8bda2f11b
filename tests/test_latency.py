"""Latency measurement: the timer reads a known duration, repeats/time limits, images/s, peak memory, and the
generator profile (parameters, output shape, device restored)."""

import sys
import time

import pytest
import torch

from ganbench.generators import bicubic_generator, load_source
from ganbench.latency import available_devices, environment, measure, profile_generator


def test_measure_reads_a_known_duration():
    """A call that sleeps 20 ms is timed at 20 ms (sleep overshoots a little, never undershoots)."""
    result = measure(lambda x: time.sleep(0.02), (torch.zeros(4, 1),), warmup=1, repeats=5, min_time_s=0.0)
    assert 20.0 <= result.median_ms < 60.0
    assert result.median_ms <= result.p90_ms
    assert result.repeats == 5 and result.batch_size == 4
    assert result.images_per_s == pytest.approx(4 / (result.median_ms / 1e3))


def test_measure_runs_until_min_time_and_stops_at_max_time():
    calls = []
    quick = measure(lambda x: calls.append(1), (torch.zeros(1),), warmup=2, repeats=3, min_time_s=0.05)
    assert quick.repeats >= 3 and len(calls) == quick.repeats + 2  # warm-up calls are not timed
    slow = measure(
        lambda x: time.sleep(0.01),
        (torch.zeros(1),),
        warmup=0,
        repeats=10_000,
        min_time_s=0.0,
        max_time_s=0.05,
    )
    assert 3 <= slow.repeats < 10  # three timed calls at least, even past max_time_s
    with pytest.raises(ValueError):
        measure(lambda x: x, (torch.zeros(1),), repeats=0)


def test_peak_memory_of_a_large_allocation():
    """64 MiB allocated (and touched) inside the call show up in the peak (Linux /proc)."""
    result = measure(
        lambda x: torch.ones(16 * 2**20, dtype=torch.float32).sum(),
        (torch.zeros(1),),
        warmup=0,
        repeats=2,
        min_time_s=0.0,
    )
    if result.peak_memory_mb is None and not sys.platform.startswith("linux"):
        pytest.skip("peak memory is read from Linux /proc")
    assert 60.0 <= result.peak_memory_mb < 200.0


def test_profile_generator_reports_parameters_shape_and_restores_device():
    generator = load_source("builtin:untrained:gan:tiny")
    profile = profile_generator(
        generator, lambda g, b: g.example_inputs(b), (1, 3), ["cpu"], warmup=0, repeats=2, min_time_s=0.0
    )
    assert profile["parameters"] == sum(p.numel() for p in generator.module.parameters())
    assert profile["output_shape"] == [1, 1, 28, 28]
    assert [(r["device"], r["batch_size"]) for r in profile["runs"]] == [("cpu", 1), ("cpu", 3)]
    assert profile["environments"]["cpu"]["torch"] == torch.__version__
    assert generator.device == torch.device("cpu")


def test_function_generators_are_timed_on_the_cpu_only():
    profile = profile_generator(
        bicubic_generator(4),
        lambda g, b: g.example_inputs(b, (3, 8, 8)),
        (2,),
        ["cpu", "cuda"],
        warmup=0,
        repeats=1,
        min_time_s=0.0,
    )
    assert [r["device"] for r in profile["runs"]] == ["cpu"] and profile["output_shape"] == [2, 3, 32, 32]
    assert profile["parameters"] == 0


def test_environment_and_devices():
    env = environment("cpu")
    assert env["device"] == "cpu" and env["device_name"] and env["threads"] == torch.get_num_threads()
    assert available_devices()[0] == "cpu" and ("cuda" in available_devices()) == torch.cuda.is_available()
