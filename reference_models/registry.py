"""The model registry: a name -> the builder of a :class:`~reference_models.engine.GANModel`, with configs.

A model module registers its builder with :func:`register_model`; the builder is called as
``builder(config, **options)`` with the full config and the ``[model]`` table's keys (other than
``name``) as keyword arguments, so the builder's signature is the list of the model's options::

    @register_model("dcgan", "DCGAN on MNIST (seed 001, TensorFlow)")
    def build_dcgan(config, *, latent_dim=100, noise="uniform", width=64) -> GANModel: ...

The model modules are imported on first use (add new ones to :data:`MODEL_MODULES`). A model's
configs live in ``reference_models/configs/<name>/*.toml``.
"""

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from reference_models.config import list_configs
from ganbench.errors import ConfigError
from reference_models.tricks import init_weights

__all__ = ["MODEL_MODULES", "ModelEntry", "register_model", "list_models", "get_model", "build"]

MODEL_MODULES = (
    "reference_models.gan",
    "reference_models.dcgan",
    "reference_models.cgan",
    "reference_models.srgan",
    "reference_models.deblurgan",
    "reference_models.cyclegan",
)


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its name, builder and one-line description."""

    name: str
    builder: Callable
    description: str

    @property
    def configs(self) -> list[str]:
        """Names of the model's shipped configs."""
        return list_configs(self.name)


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, description: str):
    """Decorator registering ``builder(config, **options) -> GANModel`` as model ``name``."""

    def decorate(builder: Callable) -> Callable:
        if name in _MODELS and _MODELS[name].builder is not builder:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelEntry(name, builder, description)
        return builder

    return decorate


def _load_models() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    _load_models()
    return sorted(_MODELS)


def get_model(name: str) -> ModelEntry:
    """The registered model ``name``; :class:`ConfigError` naming the known ones otherwise."""
    _load_models()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(sorted(_MODELS))})")
    return _MODELS[name]


def build(config: dict):
    """Build the model that ``config`` names (its ``[model]`` options) and initialise its weights.

    The weights get ``tricks.init`` (:func:`~reference_models.tricks.init_weights`); seed the global
    torch RNG first for a reproducible initialisation. Raises :class:`ConfigError` for an unknown
    model or option.
    """
    options = dict(config["model"])
    entry = get_model(options.pop("name"))
    try:
        inspect.signature(entry.builder).bind(config, **options)
    except TypeError:
        accepted = [p for p in inspect.signature(entry.builder).parameters if p != "config"]
        raise ConfigError(
            f"model {entry.name!r} does not take option(s) {sorted(set(options) - set(accepted))} "
            f"(options: {', '.join(accepted)})"
        ) from None
    return init_weights(entry.builder(config, **options), config["tricks"]["init"])
