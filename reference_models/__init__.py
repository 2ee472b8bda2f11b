"""PyTorch reference implementations of the classic GANs, trained by one engine from TOML configs.

::

    from reference_models import load_config, Trainer, list_models
    config = load_config("dcgan", "cpu", overrides=["data.name=fashion"])
    Trainer(config, "runs/dcgan-fashion").train()

Models: ``list_models()`` (configs in ``reference_models/configs/<model>/``); the engine and the
model interface: :mod:`reference_models.engine`; command line: ``ganbench train`` / ``ganbench sample``.
"""

from reference_models.config import list_configs, load_config
from reference_models.engine import Adversary, GANModel, LossTerms, StepContext, Trainer, load_trained
from ganbench.errors import ConfigError, TrainingDivergedError
from reference_models.registry import build, get_model, list_models, register_model

__all__ = [
    "Adversary",
    "ConfigError",
    "GANModel",
    "LossTerms",
    "StepContext",
    "Trainer",
    "TrainingDivergedError",
    "build",
    "get_model",
    "list_configs",
    "list_models",
    "load_config",
    "load_trained",
    "register_model",
]
