"""The names of a run's artifacts: one source for the trainer that logs them, the writer that
packs the policy's into an MLflow Model, and the loaders that read them back."""

from __future__ import annotations

__all__ = [
    "SPEC",
    "ACTOR",
    "CRITIC",
    "ENV_TRANSFORMS",
    "POLICY_MODEL_FILES",
    "POLICY_MODEL",
    "BEST_POLICY_MODEL",
]

SPEC = "spec/resolved.yaml"
"""The spec as validated (every default filled in): what rebuilds the run's modules."""

ACTOR = "model/actor.pt"
"""The trained actor's state dict (``torch.save``; loaded with ``weights_only=True``)."""

CRITIC = "model/critic.pt"
"""The trained critic's state dict."""

ENV_TRANSFORMS = "model/env_transforms.pt"
"""The env transforms' statistics (observation normalization): part of the policy."""

POLICY_MODEL_FILES = {SPEC: "spec", ACTOR: "actor", ENV_TRANSFORMS: "env_transforms"}
"""The run's files an MLflow Model of its policy holds, and each one's artifact key there
(``mlflow.pyfunc``'s ``artifacts``): weights and statistics as state dicts, never a pickled module."""

POLICY_MODEL = "policy"
"""The MLflow Model of the final policy (a ``LoggedModel`` linked to the run)."""

BEST_POLICY_MODEL = "policy_best"
"""The MLflow Model of the best-evaluated policy (runs that evaluate)."""
