"""gan, dcgan, cgan: shapes, parameter counts against the seeds' layer formulas, framework translation."""

import math

import pytest
import torch
from torch import nn

from reference_models.cgan import ConditionalDiscriminator, ConditionalGenerator
from reference_models.config import list_configs, load_config
from reference_models.dcgan import DCGANDiscriminator, DCGANGenerator
from reference_models.engine import build_optimizer
from ganbench.errors import ConfigError
from reference_models.gan import MLPDiscriminator, MLPGenerator
from reference_models.registry import build, get_model, list_models


def n_params(module: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def n_running_stats(module: nn.Module) -> int:
    return sum(
        b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var"))
    )


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


@pytest.fixture(scope="module", params=["gan", "dcgan", "cgan"])
def paper_model(request):
    torch.manual_seed(0)
    return request.param, build(load_config(request.param, "paper"))


def test_generator_and_discriminator_shapes(paper_model):
    name, model = paper_model
    model.eval()
    with torch.no_grad():
        images = model.sample(5, torch.Generator().manual_seed(0))
        labels = torch.arange(5) if name == "cgan" else None
        scores = model.D.net(images) if labels is None else model.D.net(images, labels)
    assert images.shape == (5, 1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.0
    assert scores.shape == (5, 1) and bool(torch.isfinite(scores).all())


def test_gan_matches_the_seed_keras_summary():
    generator, discriminator = MLPGenerator(), MLPDiscriminator()
    # Seed 000: "Total params: 1,493,520 / Trainable params: 1,489,936 / Non-trainable params: 3,584".
    assert n_params(generator) == 1_489_936
    assert n_running_stats(generator) == 3_584
    assert n_params(discriminator) == 533_505  # "sequential_1 (Sequential) (None, 1) 533505"
    assert n_params(generator) == dense(100, 256) + dense(256, 512) + dense(512, 1024) + dense(
        1024, 784
    ) + 2 * (256 + 512 + 1024)


def test_keras_batchnorm_momentum_0_8_is_torch_0_2():
    """Keras: moving = 0.8 * moving + 0.2 * batch; after one batch from 0 the mean is 0.2 * batch mean."""
    torch.manual_seed(0)
    generator = MLPGenerator()
    norm = generator.main[2]
    assert (
        isinstance(norm, nn.BatchNorm1d)
        and norm.momentum == pytest.approx(0.2)
        and norm.eps == pytest.approx(1e-3)
    )
    z = torch.randn(16, 100)
    with torch.no_grad():
        activations = generator.main[1](generator.main[0](z))
        generator(z)
    assert torch.allclose(norm.running_mean, 0.2 * activations.mean(0), atol=1e-6)


def test_dcgan_parameter_counts_match_tensorflow_layers():
    generator, discriminator = DCGANGenerator(), DCGANDiscriminator()
    # TF batch_norm(scale=False) trains beta only; gamma is a frozen 1 here.
    expected_g = (
        dense(100, 3 * 3 * 512)
        + 512
        + conv(5, 512, 256)
        + 256
        + conv(5, 256, 128)
        + 128
        + conv(5, 128, 64)
        + 64
    )
    expected_g += conv(5, 64, 1)
    assert n_params(generator) == expected_g == 4_769_217
    expected_d = (
        conv(5, 1, 64)
        + conv(5, 64, 128)
        + 128
        + conv(5, 128, 256)
        + 256
        + conv(5, 256, 512)
        + 512
        + dense(2048, 1)
    )
    assert n_params(discriminator) == expected_d == 4_306_305
    norms = [
        m for m in list(generator.modules()) + list(discriminator.modules()) if isinstance(m, nn.BatchNorm2d)
    ]
    assert len(norms) == 7
    for norm in norms:  # tf.contrib batch_norm(decay=0.9): momentum 0.1, epsilon 1e-3, no scale
        assert norm.momentum == pytest.approx(0.1) and norm.eps == pytest.approx(1e-3)
        assert not norm.weight.requires_grad and bool((norm.weight == 1).all())


def test_dcgan_intermediate_sizes():
    generator, discriminator = DCGANGenerator(width=4), DCGANDiscriminator(width=4)
    sizes = []
    for module in list(generator.modules()) + list(discriminator.modules()):
        if isinstance(module, (nn.ConvTranspose2d, nn.Conv2d)):
            module.register_forward_hook(lambda m, args, out: sizes.append(tuple(out.shape[-2:])))
    with torch.no_grad():
        discriminator(generator(torch.rand(2, 100) * 2 - 1))
    assert sizes == [(6, 6), (12, 12), (24, 24), (28, 28), (14, 14), (7, 7), (4, 4), (2, 2)]


def test_dcgan_noise_is_uniform_and_gan_noise_normal():
    torch.manual_seed(0)
    dcgan = build(load_config("dcgan", "tiny"))
    z = dcgan.latent(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 100) and float(z.min()) >= -1.0 and float(z.max()) <= 1.0
    assert float(z.std()) == pytest.approx(1 / math.sqrt(3), rel=0.01)
    gan = build(load_config("gan", "tiny"))
    assert float(gan.latent(4000, torch.Generator().manual_seed(0)).std()) == pytest.approx(1.0, rel=0.01)


def test_cgan_is_conditioned_on_the_label():
    torch.manual_seed(0)
    generator, discriminator = ConditionalGenerator(width=8), ConditionalDiscriminator(width=8)
    z = torch.randn(3, 100)
    with torch.no_grad():
        zeros, nines = generator(z, torch.zeros(3, dtype=torch.long)), generator(z, torch.full((3,), 9))
        assert zeros.shape == (3, 1, 28, 28)
        assert float((zeros - nines).abs().max()) > 1e-4
        assert (
            float(
                (
                    discriminator(zeros, torch.zeros(3, dtype=torch.long))
                    - discriminator(zeros, torch.full((3,), 9))
                )
                .abs()
                .max()
            )
            > 1e-5
        )
    assert float(generator.embed.weight.detach().abs().max()) <= 0.05  # Keras Embedding: uniform(-0.05, 0.05)
    assert (
        n_params(ConditionalGenerator())
        == 10 * 100 + dense(200, 128 * 7 * 7) + conv(3, 128, 128) + conv(3, 128, 64) + conv(3, 64, 1)
        == 1_483_625
    )


def test_cgan_grid_has_one_class_per_column():
    model = build(load_config("cgan", "tiny"))
    inputs = model.preview_inputs(None, 20, torch.Generator().manual_seed(0))
    assert model.grid_columns(20) == 10
    assert inputs["label"].tolist() == list(range(10)) * 2


def test_registry_lists_models_and_configs():
    assert {"gan", "dcgan", "cgan"} <= set(list_models())
    for name in ("gan", "dcgan", "cgan"):
        assert {"cpu", "paper", "tiny"} <= set(get_model(name).configs)
        assert get_model(name).description
    with pytest.raises(ConfigError, match="unknown model 'stylegan'"):
        get_model("stylegan")
    with pytest.raises(ConfigError, match="does not take option"):
        build(load_config("dcgan", "tiny", overrides=["model.depth=3"]))


@pytest.mark.parametrize("model", ["gan", "dcgan", "cgan"])
def test_every_shipped_config_loads_and_builds(model):
    for name in list_configs(model):
        config = load_config(model, name)
        assert config["model"]["name"] == model
        built = build(config)
        assert set(built.players) == set(config["optim"]) == {"G", "D"}
        for player in built.players:  # the optimizer tables are valid too
            build_optimizer(config["optim"][player], built.player_parameters(player))
