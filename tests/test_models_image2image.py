"""CycleGAN, SRResNet/SRGAN and DeblurGAN networks: shapes, parameter counts, skips, Keras padding rules.

Parameter counts are checked against counts derived independently from the seeds' layer lists (a Keras
``model.summary()`` of the seed code gives the same totals; Keras also counts BatchNorm's two moving
statistics per channel, which PyTorch keeps as buffers).
"""

import numpy as np
import pytest
import torch
from torch import nn

from ganbench.errors import ImageShapeError
from reference_models.cyclegan import PatchDiscriminator, UNetGenerator
from reference_models.deblurgan import DeblurCritic, ResnetBlock, ResnetGenerator
from reference_models.keras_compat import Conv2dSame, ConvTranspose2dSame, KerasContribInstanceNorm
from reference_models.srgan import SRGANDiscriminator, SRResNet


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(cin: int, cout: int, k: int) -> int:
    """Parameters of a conv layer with bias."""
    return cin * cout * k * k + cout


@pytest.fixture(autouse=True)
def _seed_no_grad():
    torch.manual_seed(0)
    with torch.no_grad():
        yield


# --- Keras-compatible layers -------------------------------------------------------------------------


@pytest.mark.parametrize("size,kernel,stride", [(128, 4, 2), (128, 4, 1), (64, 3, 2), (65, 3, 2), (7, 4, 2)])
def test_conv_same_output_size_is_ceil(size, kernel, stride):
    layer = Conv2dSame(1, 1, kernel, stride)
    out = layer(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == -(-size // stride)


def test_conv_same_puts_the_odd_pad_at_the_end():
    # TensorFlow 'same', k=4, s=1: 3 pixels of padding, 1 before and 2 after. A kernel that only reads
    # its top-left tap therefore returns the input shifted down/right by one pixel.
    layer = Conv2dSame(1, 1, 4)
    layer.weight.zero_()
    layer.weight[0, 0, 0, 0] = 1.0
    layer.bias.zero_()
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    out = layer(x)
    assert torch.equal(out[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    assert torch.equal(out[0, 0, 0], torch.zeros(6))


def test_conv_transpose_same_window():
    # TensorFlow 'same' transposed conv, k=3, s=2: input pixel i reaches outputs 2i..2i+2, cropped to
    # [0, 2n); PyTorch's padding=1/output_padding=1 would shift this by one pixel.
    layer = ConvTranspose2dSame(1, 1, 3, 2)
    layer.weight.zero_()
    layer.weight[0, 0, 0, 0] = 1.0
    layer.bias.zero_()
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 2] = 1.0
    out = layer(x)
    assert out.shape == (1, 1, 8, 8)
    assert out[0, 0, 2, 4] == 1.0 and float(out.abs().sum()) == 1.0


def test_keras_contrib_instance_norm_matches_formula():
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64) * 3 + 1
    norm = KerasContribInstanceNorm().double()
    norm.weight.fill_(1.7)
    norm.bias.fill_(-0.4)
    ref = x.numpy().copy()
    for i in range(2):  # keras_contrib, axis=None: over (C, H, W), (x - mean) / (std + eps)
        ref[i] = (ref[i] - ref[i].mean()) / (ref[i].std() + 1e-3) * 1.7 - 0.4
    np.testing.assert_allclose(norm(x).numpy(), ref, rtol=0, atol=1e-12)


# --- CycleGAN ------------------------------------------------------------------------------------------


def test_unet_generator_shape_range_and_params():
    g = UNetGenerator()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    gf = 32
    downs = conv(3, gf, 4) + conv(gf, 2 * gf, 4) + conv(2 * gf, 4 * gf, 4) + conv(4 * gf, 8 * gf, 4)
    ups = conv(8 * gf, 4 * gf, 4) + conv(8 * gf, 2 * gf, 4) + conv(4 * gf, gf, 4) + conv(2 * gf, 3, 4)
    assert n_params(g) == downs + ups + 7 * 2 == 1_545_425  # 7 norms with a scalar gamma/beta each
    per_channel = UNetGenerator(norm="instance")
    assert n_params(per_channel) == downs + ups + 2 * (gf + 2 * gf + 4 * gf + 8 * gf + 4 * gf + 2 * gf + gf)


def test_unet_skips_concatenate_the_down_features():
    g = UNetGenerator(gf=8)
    captured = {}
    for i, block in enumerate(g.down):
        block.register_forward_hook(lambda m, inp, out, i=i: captured.__setitem__(f"d{i + 1}", out))
    for i, block in enumerate(g.up):
        block.register_forward_hook(lambda m, inp, out, i=i: captured.__setitem__(f"u{i + 1}", out))
    g(torch.randn(2, 3, 32, 32))
    # u1 = [conv(d4) (4gf), d3], u2 = [conv(u1) (2gf), d2], u3 = [conv(u2) (gf), d1]
    for up, down, width in (("u1", "d3", 32), ("u2", "d2", 16), ("u3", "d1", 8)):
        assert torch.equal(captured[up][:, width:], captured[down])
    assert captured["u3"].shape == (2, 16, 16, 16)


def test_patch_discriminator_shape_and_params():
    d = PatchDiscriminator()
    out = d(torch.randn(2, 3, 128, 128))
    assert out.shape == (2, 1, 8, 8)  # the seed's disc_patch = 128 / 2**4
    df = 64
    convs = (
        conv(3, df, 4)
        + conv(df, 2 * df, 4)
        + conv(2 * df, 4 * df, 4)
        + conv(4 * df, 8 * df, 4)
        + conv(8 * df, 1, 4)
    )
    assert n_params(d) == convs + 3 * 2 == 2_764_743


def test_cyclegan_rejects_sizes_not_multiple_of_16():
    with pytest.raises(ImageShapeError, match="multiples of 16"):
        UNetGenerator(gf=4)(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="batch")


# --- SRResNet / SRGAN ----------------------------------------------------------------------------------


def test_srresnet_x4_shape_and_params():
    g = SRResNet().eval()
    y = g(torch.rand(1, 3, 8, 6))
    assert y.shape == (1, 3, 32, 24) and float(y.abs().max()) <= 1.0
    f = 64
    expected = (
        conv(3, f, 9)
        + 1  # head conv + PReLU
        + 16 * (2 * conv(f, f, 3) + 2 * 2 * f + 1)  # residual blocks: 2 convs, 2 BN, PReLU
        + conv(f, f, 3)
        + 2 * f  # trunk end conv + BN
        + 2 * (conv(f, 4 * f, 3) + 1)  # two up-sampling stages + PReLU
        + conv(f, 3, 9)
    )
    assert n_params(g) == expected == 1_549_462  # "1.5M" for SRResNet
    assert sum(isinstance(m, nn.PixelShuffle) and m.upscale_factor == 2 for m in g.modules()) == 2


def test_srresnet_global_skip_and_scale2():
    g = SRResNet(features=16, num_blocks=2, scale=2).eval()
    x = torch.rand(1, 3, 10, 12)
    assert g(x).shape == (1, 3, 20, 24)
    g.trunk[-1].weight.zero_()  # zero the trunk's last BN: the trunk adds nothing, only the skip remains
    g.trunk[-1].bias.zero_()
    expected = g.tail(g.upsample(g.head(x)))
    torch.testing.assert_close(g(x), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="power of two"):
        SRResNet(scale=3)


def test_srresnet_bicubic_skip_starts_at_bicubic_quality(data_root):
    """With a zero residual the bicubic-skip SRResNet is a bicubic up-sampler: on Set5 "baby" x4 it
    scores within 0.3 dB of MATLAB's bicubic (PyTorch's kernel is a = -0.75, MATLAB's a = -0.5)."""
    from ganbench.data.images import read_image
    from ganbench.imresize import imresize
    from ganbench.sr import bicubic_upscale, score_sr

    g = SRResNet(features=8, num_blocks=1, global_skip="bicubic").eval()
    g.tail[0].weight.zero_()
    g.tail[0].bias.zero_()
    hr, matlab_sr = bicubic_upscale(read_image(data_root / "sr" / "Set5" / "HR" / "baby.png"), 4)
    lr = imresize(hr, 0.25)
    out = g(lr.float().unsqueeze(0) / 255.0)[0]
    sr = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    psnr_skip, psnr_matlab = score_sr(sr, hr, 4)[0], score_sr(matlab_sr, hr, 4)[0]
    assert psnr_matlab == pytest.approx(31.78, abs=0.05)  # published bicubic x4 on "baby" (Y, crop 4)
    assert psnr_skip == pytest.approx(psnr_matlab, abs=0.3)
    with pytest.raises(ValueError, match="global_skip"):
        SRResNet(global_skip="nearest")


def test_srgan_discriminator_shape_params_and_strides():
    d = SRGANDiscriminator()
    small = SRGANDiscriminator(image_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    assert small.features(x).shape == (2, 512, 2, 2)  # strides 1,2,1,2,1,2,1,2: 32 / 16
    assert small(x).shape == (2, 1)
    widths = [64, 64, 128, 128, 256, 256, 512, 512]
    convs = sum(conv(cin, cout, 3) for cin, cout in zip([3] + widths[:-1], widths, strict=True))
    bns = 2 * sum(widths[1:])
    dense = (512 * 6 * 6 * 1024 + 1024) + (1024 + 1)
    assert n_params(d) == convs + bns + dense == 23_565_505
    assert not isinstance(d.features[1], nn.BatchNorm2d)  # no BN after the first conv
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 7
    with pytest.raises(ImageShapeError, match="96"):
        d(torch.randn(1, 3, 64, 64))


# --- DeblurGAN -----------------------------------------------------------------------------------------


def test_deblur_generator_shape_widths_and_params():
    g = ResnetGenerator().eval()
    x = torch.rand(1, 3, 24, 16) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    widths = [m.out_channels for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert widths == [64, 128, 256] + [256] * 18 + [128, 64, 3]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in g.modules()) == 9
    ngf, bn = 64, 2  # trainable BN parameters per channel (Keras adds 2 moving statistics)
    expected = (
        conv(3, ngf, 7)
        + bn * ngf
        + conv(ngf, 2 * ngf, 3)
        + bn * 2 * ngf
        + conv(2 * ngf, 4 * ngf, 3)
        + bn * 4 * ngf
        + 9 * (2 * conv(4 * ngf, 4 * ngf, 3) + 2 * bn * 4 * ngf)
        + conv(4 * ngf, 2 * ngf, 3)
        + bn * 2 * ngf
        + conv(2 * ngf, ngf, 3)
        + bn * ngf
        + conv(ngf, 3, 7)
    )
    assert n_params(g) == expected == 11_388_675  # seed summary: 11,399,171 with 10,496 BN statistics


def test_deblur_generator_global_skip_formula():
    g = ResnetGenerator(ngf=8, num_blocks=1).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    last = [m for m in g.modules() if isinstance(m, nn.Conv2d)][-1]
    last.weight.zero_()
    last.bias.zero_()  # tanh(0) = 0: output = (2 * 0 + x) / 3
    torch.testing.assert_close(g(x), x / 3, rtol=0, atol=1e-7)
    last.bias.fill_(30.0)  # tanh -> 1: output = (2 + x) / 3
    torch.testing.assert_close(g(x), (2 + x) / 3, rtol=0, atol=1e-6)
    with pytest.raises(ImageShapeError, match="multiples of 4"):
        g(torch.zeros(1, 3, 18, 16))
    residual = ResnetGenerator(ngf=8, num_blocks=1, global_skip="residual").eval()
    residual.load_state_dict(g.state_dict())  # tanh -> 1 still: output = x + 1
    torch.testing.assert_close(residual(x), x + 1, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="global_skip"):
        ResnetGenerator(global_skip="concat")


def test_deblur_generator_residual_starts_at_identity_and_norm_none():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    fresh = ResnetGenerator(ngf=8, num_blocks=2, dropout=0.0, global_skip="residual", norm="none").train()
    torch.testing.assert_close(fresh(x), x, rtol=0, atol=0)  # zero last conv: returns its input
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fresh.modules())
    batch = ResnetGenerator(ngf=8, num_blocks=2, global_skip="residual")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == 3 + 2 * 2 + 2
    assert n_params(batch) - n_params(fresh) == 2 * (8 + 16 + 32 + 2 * 2 * 32 + 16 + 8)  # BN gamma, beta
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="instance")


def test_deblur_critic_shape_widths_and_params():
    d = DeblurCritic()
    widths = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 64, 128, 256, 512, 1]  # the seed's min(2**n, 8) loop starts at 2**0
    convs = sum(conv(cin, cout, 4) for cin, cout in zip([3] + widths[:-1], widths, strict=True))
    bns = 2 * (64 + 128 + 256 + 512)
    dense = (16 * 16 * 1024 + 1024) + (1024 + 1)
    assert n_params(d) == convs + bns + dense == 3_096_450  # seed summary: 3,098,370 with BN statistics
    small = DeblurCritic(image_size=64, sigmoid_output=True).eval()
    out = small(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert out.shape == (3, 1) and bool(((out > 0) & (out < 1)).all())
    with pytest.raises(ImageShapeError, match="64"):
        small(torch.zeros(1, 3, 128, 128))


def test_keras_seeds_use_glorot_uniform_init():
    g = ResnetGenerator(num_blocks=1)
    layer = next(m for m in g.modules() if isinstance(m, ResnetBlock)).body[1]  # 256 -> 256, 3x3
    limit = (6 / (2 * 256 * 9)) ** 0.5  # Keras glorot_uniform: U(-limit, limit)
    assert float(layer.weight.abs().max()) <= limit
    assert float(layer.weight.std()) == pytest.approx(limit / 3**0.5, rel=0.02)
    assert float(layer.bias.abs().max()) == 0.0
    d = PatchDiscriminator(df=8)
    assert all(float(m.bias.abs().max()) == 0.0 for m in d.modules() if isinstance(m, nn.Conv2d))
