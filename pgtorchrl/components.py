"""Every registry a spec draws from, by section (``from pgtorchrl.components import ACTORS``):
the stable name plugins register into. Each registry and pgtorchrl's own components in it live
in the catalog of their role (:mod:`pgtorchrl.envs.catalog`, :mod:`pgtorchrl.modules.catalog`,
:mod:`pgtorchrl.objectives.catalog`, :mod:`pgtorchrl.collectors.catalog`)."""

from __future__ import annotations

from pgtorchrl.collectors.catalog import COLLECTORS
from pgtorchrl.config.registry import Registry
from pgtorchrl.envs.catalog import ENVS, TRANSFORMS
from pgtorchrl.modules.catalog import ACTORS, CRITICS
from pgtorchrl.objectives.catalog import ADVANTAGES, LOSSES, OPTIMIZERS

__all__ = [
    "ACTORS",
    "ADVANTAGES",
    "COLLECTORS",
    "CRITICS",
    "ENVS",
    "LOSSES",
    "OPTIMIZERS",
    "REGISTRIES",
    "TRANSFORMS",
    "TORCHRL_PREFIX",
]

#: Spec section -> registry. ``critic_optim`` draws from the optimizers too.
REGISTRIES: dict[str, Registry] = {
    "env": ENVS,
    "actor": ACTORS,
    "critic": CRITICS,
    "collector": COLLECTORS,
    "advantage": ADVANTAGES,
    "loss": LOSSES,
    "optim": OPTIMIZERS,
    "critic_optim": OPTIMIZERS,
}

#: Registry names of TorchRL's own components start with this (``torchrl.A2CLoss``): the rest are pgtorchrl's.
TORCHRL_PREFIX = "torchrl."
