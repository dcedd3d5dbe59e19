"""pgtorchrl: declarative policy-gradient pipelines on TorchRL, tracked in MLflow.

The building blocks are plain TorchRL/TensorDict modules, importable for use in your own scripts::

    from pgtorchrl import ReinforceLoss, GAE, RewardToGo, make_actor, make_critic, make_gym_env

Attributes are imported lazily so that ``python -m pgtorchrl --help`` stays fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ReinforceLoss": "pgtorchrl.loss",
    "AdvantageEstimator": "pgtorchrl.advantage",
    "RewardToGo": "pgtorchrl.advantage",
    "GAE": "pgtorchrl.advantage",
    "reward_to_go": "pgtorchrl.functional",
    "generalized_advantage": "pgtorchrl.functional",
    "make_actor": "pgtorchrl.models",
    "make_critic": "pgtorchrl.models",
    "make_discrete_actor": "pgtorchrl.models",
    "make_gaussian_actor": "pgtorchrl.models",
    "make_gym_env": "pgtorchrl.envs",
    "evaluate": "pgtorchrl.evaluation",
    "Spec": "pgtorchrl.spec",
    "SpecError": "pgtorchrl.spec",
    "load_spec": "pgtorchrl.spec",
    "build_pipeline": "pgtorchrl.pipeline",
    "train": "pgtorchrl.trainer",
    "load_actor": "pgtorchrl.loading",
    "load_critic": "pgtorchrl.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pgtorchrl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
