"""The actors and critics a spec can name (``actor:``, ``critic:``), registered by name.

Each factory's keyword-only parameters are the YAML fields of its section (the keyword names of
the builder it calls); its positional parameter is wiring (the built env, whose specs size the
networks). The builders are imported inside the factories: validating a spec reads these
signatures without importing torch (see :mod:`pgtorchrl.envs.catalog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from pgtorchrl.config.fields import HiddenSizes, Keys
from pgtorchrl.config.registry import Registry
from pgtorchrl.modules.choices import Activation, Distribution

if TYPE_CHECKING:
    from torchrl.envs import EnvBase

__all__ = ["ACTORS", "CRITICS"]

ACTORS = Registry("actor", wiring=("env",), base=("torch", "Module"))
CRITICS = Registry("critic", wiring=("env",), base=("torch", "Module"))


@ACTORS.register("mlp")
def mlp_actor(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],
    hidden_sizes: HiddenSizes = [64, 64],
    activation: Activation = "tanh",
    distribution: Distribution = "auto",
    init_log_std: float = -0.5,
):
    """ProbabilisticActor over an MLP reading in_keys: categorical for discrete actions, Gaussian for Box."""
    from pgtorchrl.modules.models import make_actor

    return make_actor(
        env.observation_spec,
        env.action_spec,
        in_keys=in_keys,
        hidden_sizes=hidden_sizes,
        activation=activation,
        distribution=distribution,
        init_log_std=init_log_std,
    )


Preferences = Annotated[list[float], Field(min_length=2, max_length=2)]


@ACTORS.register("linear_softmax")
def linear_softmax(
    env: "EnvBase",
    *,
    init_preferences: Preferences = [-1.47, 1.47],
    prob_floor: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0,
    independent_runs: bool = False,
):
    """Textbook linear softmax over x(s,right)=[1,0], x(s,left)=[0,1]; independent_runs: a theta per env."""
    from pgtorchrl.modules.linear_softmax import make_corridor_actor

    num_runs = env.batch_size.numel() if independent_runs else None
    return make_corridor_actor(init_preferences, prob_floor, num_runs)


@CRITICS.register("scalar")
def scalar_critic(env: "EnvBase", *, init: float = 0.0, independent_runs: bool = False):
    """The textbook's scalar baseline v(s, w) = w (one w, or one per env with independent_runs)."""
    from torchrl.modules import ValueOperator

    from pgtorchrl.modules.linear_softmax import ScalarValue

    num_runs = env.batch_size.numel() if independent_runs else None
    return ValueOperator(ScalarValue(init, num_runs), in_keys=["observation"])


@CRITICS.register("mlp")
def mlp_critic(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],
    hidden_sizes: HiddenSizes = [64, 64],
    activation: Activation = "tanh",
):
    """ValueOperator over an MLP reading in_keys, writing state_value."""
    from pgtorchrl.modules.models import make_critic

    return make_critic(env.observation_spec, in_keys=in_keys, hidden_sizes=hidden_sizes, activation=activation)
