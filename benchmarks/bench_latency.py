"""Latency of the reference generators as pytest-benchmark benchmarks (kept out of the default test run).

The measurement is :mod:`ganbench.latency`'s: inputs made beforehand on the device, calls under
``torch.inference_mode``, CUDA synchronised after each call, warm-up rounds first. Networks are the
reference models at their published sizes, seeded initialisation (weights do not change the time).
Each generator runs at batch 1 and at a throughput batch, on the CPU and, when there is one, the GPU.

    .venv/bin/pytest benchmarks/bench_latency.py                              # everything
    .venv/bin/pytest benchmarks/bench_latency.py -k "dcgan or cgan"           # a few
    .venv/bin/pytest benchmarks/bench_latency.py -k cpu --benchmark-columns=median,iqr,ops

``pytest`` alone never collects this file (``testpaths = ["tests"]`` and the ``bench_`` prefix); name it
on the command line. ``ganbench score ... --latency`` and ``ganbench run`` report the same measurements
(median, p90, images/s, peak memory) for any generator.
"""

import pytest
import torch

from ganbench.generators import IMAGE_MODELS, Generator, bicubic_generator, load_source
from ganbench.latency import available_devices


def _image_generator(name: str, network: torch.nn.Module) -> Generator:
    spec = IMAGE_MODELS[name]
    return Generator(
        name,
        "image",
        network.eval(),
        network,
        input_range=spec.input_range,
        output_range=spec.output_range,
        channels=spec.channels,
        multiple=spec.multiple,
    )


def _reference_image_network(name: str) -> torch.nn.Module:
    """The image-to-image networks of reference_models at their default (published) sizes."""
    torch.manual_seed(0)
    if name in ("srresnet", "srgan"):
        from reference_models.srgan import SRResNet

        return SRResNet()
    if name == "deblurgan":
        from reference_models.deblurgan import ResnetGenerator

        return ResnetGenerator()
    from reference_models.cyclegan import UNetGenerator

    return UNetGenerator()


# (id, how to build the generator, input image shape for image models, throughput batch)
CASES = [
    ("gan", lambda: load_source("builtin:untrained:gan:paper"), None, 256),
    ("dcgan", lambda: load_source("builtin:untrained:dcgan:paper"), None, 256),
    ("cgan", lambda: load_source("builtin:untrained:cgan:paper"), None, 256),
    (
        "srresnet-64px",
        lambda: _image_generator("srresnet", _reference_image_network("srresnet")),
        (3, 64, 64),
        8,
    ),
    (
        "deblurgan-256px",
        lambda: _image_generator("deblurgan", _reference_image_network("deblurgan")),
        (3, 256, 256),
        4,
    ),
    (
        "cyclegan-128px",
        lambda: _image_generator("cyclegan", _reference_image_network("cyclegan")),
        (3, 128, 128),
        16,
    ),
    ("bicubic-x4-64px", lambda: bicubic_generator(4), (3, 64, 64), 8),
]


def _params():
    for name, build, shape, throughput in CASES:
        for device in available_devices():
            if name.startswith("bicubic") and device != "cpu":
                continue  # a CPU function: nothing to time on the GPU
            for batch in (1, throughput):
                yield pytest.param(build, shape, batch, device, id=f"{name}-{device}-b{batch}")


@pytest.mark.parametrize("build, shape, batch, device", list(_params()))
def test_generator_latency(benchmark, build, shape, batch, device):
    generator = build().to(device)
    inputs = generator.example_inputs(batch) if shape is None else generator.example_inputs(batch, shape)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def call():
        with torch.inference_mode():
            out = generator(*inputs)
        sync()
        return out

    out = benchmark.pedantic(call, rounds=10, warmup_rounds=2, iterations=1)
    benchmark.extra_info.update(
        {
            "parameters": generator.num_parameters(),
            "output_shape": list(out.shape),
            "torch": torch.__version__,
            "device": device,
            "batch_size": batch,
        }
    )
    assert out.shape[0] == batch
