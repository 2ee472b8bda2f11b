"""Evaluation tasks: each fixes the reference data, the sample count, the metrics and how a generator
is called.

::

    from ganbench.tasks import get_task, list_tasks
    task = get_task("mnist", n=1000, reference="embedded")
    result = task.evaluate(generator_or_samples, seed=0)

Tasks (one module per family; options: ``get_task(name).options``):

* ``mnist``, ``fashion``, ``mnist-cond``, ``fashion-cond``: :mod:`ganbench.tasks.generation`;
* ``sr-x4`` (Set5, Set14, BSD100): :mod:`ganbench.tasks.sr`;
* ``deblur`` (blurred BSD100 and the real pairs): :mod:`ganbench.tasks.deblur`;
* ``mnist2mnistm``, ``apple2orange``: :mod:`ganbench.tasks.translation`.

Results and their intervals: :mod:`ganbench.tasks.base`. Register a new task class with
:func:`register_task` and add its module to :data:`TASK_MODULES`.
"""

from __future__ import annotations

import importlib

from ganbench.errors import ConfigError

__all__ = ["TASK_MODULES", "register_task", "get_task", "list_tasks", "task_class"]

TASK_MODULES = (
    "ganbench.tasks.generation",
    "ganbench.tasks.sr",
    "ganbench.tasks.deblur",
    "ganbench.tasks.translation",
)

_TASKS: dict[str, type] = {}


def register_task(cls: type) -> type:
    """Class decorator registering a :class:`~ganbench.tasks.base.Task` subclass under ``cls.name`` (a
    re-imported module replaces its own classes; another class of the same name is an error)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    known = _TASKS.get(cls.name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"task {cls.name!r} is registered twice ({known.__module__} and {cls.__module__})")
    _TASKS[cls.name] = cls
    return cls


def _load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    _load_tasks()
    return sorted(_TASKS)


def task_class(name: str) -> type:
    """The task class registered as ``name``; :class:`ConfigError` naming the known tasks otherwise."""
    _load_tasks()
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r} (tasks: {', '.join(sorted(_TASKS))})")
    return _TASKS[name]


def get_task(name: str, **options):
    """An instance of task ``name`` with ``options`` (checked against the task's defaults)."""
    return task_class(name)(**options)
