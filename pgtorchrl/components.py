"""The component registries a plugin registers into (``from pgtorchrl.components import ACTORS``):
a stable name for :mod:`pgtorchrl.spec.components`, where they and pgtorchrl's own components live."""
from pgtorchrl.spec.components import (  # noqa: F401 (re-exported)
    ACTORS,
    ADVANTAGES,
    COLLECTORS,
    CRITICS,
    ENVS,
    LOSSES,
    OPTIMIZERS,
    REGISTRIES,
    TRANSFORMS,
)

__all__ = ["ACTORS", "ADVANTAGES", "COLLECTORS", "CRITICS", "ENVS", "LOSSES", "OPTIMIZERS", "REGISTRIES", "TRANSFORMS"]
