"""pgtorchrl: declarative policy-gradient pipelines on TorchRL, tracked in MLflow.

The building blocks are plain TorchRL/TensorDict modules, importable for use in your own scripts::

    from pgtorchrl import ReinforceLoss, GAE, RewardToGo, make_actor, make_critic, make_gym_env

Attributes are imported lazily so that ``python -m pgtorchrl --help`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ReinforceLoss": "pgtorchrl.objectives.reinforce",
    "AdvantageEstimator": "pgtorchrl.objectives.value.advantages",
    "RewardToGo": "pgtorchrl.objectives.value.advantages",
    "GAE": "pgtorchrl.objectives.value.advantages",
    "reward_to_go": "pgtorchrl.objectives.value.functional",
    "generalized_advantage": "pgtorchrl.objectives.value.functional",
    "make_actor": "pgtorchrl.modules.models",
    "make_critic": "pgtorchrl.modules.models",
    "make_discrete_actor": "pgtorchrl.modules.models",
    "make_gaussian_actor": "pgtorchrl.modules.models",
    "make_gym_env": "pgtorchrl.envs.gym",
    "evaluate": "pgtorchrl.trainers.evaluation",
    "Spec": "pgtorchrl.pipeline.schema",
    "SpecError": "pgtorchrl.config.spec_file",
    "load_spec": "pgtorchrl.pipeline.parse",
    "build_pipeline": "pgtorchrl.pipeline.build",
    "train": "pgtorchrl.trainers.trainer",
    "load_actor": "pgtorchrl.experiments.loading",
    "load_critic": "pgtorchrl.experiments.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pgtorchrl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
