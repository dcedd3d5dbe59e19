"""Every component a pipeline spec can name, by kind.

Each factory's keyword-only parameters are the YAML fields of its section (same names as the
constructor it calls). Heavy libraries are imported inside the factories, so reading and
validating a spec stays cheap.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Literal, Optional

from pydantic import AfterValidator, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from pgtorchrl.registry import Registry

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase

    from pgtorchrl.distributed import WorkerEnvs

__all__ = ["RAY_WORKERS", "ENVS", "ACTORS", "CRITICS", "COLLECTORS", "ADVANTAGES", "LOSSES", "OPTIMIZERS", "REGISTRIES"]

RAY_WORKERS = 2  # Ray collector workers when a spec names none

ENVS = Registry("env")
ACTORS = Registry("actor")
CRITICS = Registry("critic")
COLLECTORS = Registry("collector")
ADVANTAGES = Registry("advantage")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optim")

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

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Activation = Literal["tanh", "relu", "elu", "gelu", "silu"]
HiddenSizes = Annotated[list[PositiveInt], Field(max_length=16)]


def _known_gym_id(env_id: str) -> str:
    from pgtorchrl.gym_ids import check_gym_id

    check_gym_id(env_id)
    return env_id


GymId = Annotated[str, AfterValidator(_known_gym_id)]
GymEnvCount = Annotated[int, Field(ge=1, le=4096)]  # gymnasium envs are Python objects, stepped one by one


# --- environments -------------------------------------------------------------------------------
# Wiring: the spec's top-level ``device``; the env (a torch-native one, its state too) lives there.
@ENVS.register("gym")
def gym_env(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
) -> "EnvBase":
    """A gymnasium id, ``num_envs`` copies stepped as one batched TorchRL env (GymWrapper)."""
    from pgtorchrl.envs import make_gym_env

    return make_gym_env(env_id, num_envs, device=device)


@ENVS.register("gym_native")
def gym_native(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
) -> "EnvBase":
    """A gymnasium id (flat Box observations; Discrete or Box actions) on the tensor fast path."""
    from pgtorchrl.gym_native import GymNativeEnv

    return GymNativeEnv(env_id, num_envs, device=device)


@ENVS.register("short_corridor")
def short_corridor(device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**7)] = 1) -> "EnvBase":
    """Sutton & Barto's short corridor with switched actions (Example 13.1), batched, in torch."""
    from pgtorchrl.short_corridor import make_short_corridor

    return make_short_corridor(num_envs, device)


@ENVS.register("torch_cartpole")
def torch_cartpole(
    device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**8)] = 8, max_episode_steps: PositiveInt = 500
) -> "EnvBase":
    """CartPole-v1 in torch (gymnasium's exact dynamics), many envs in one tensor, CPU or CUDA."""
    from pgtorchrl.cartpole import TorchCartPoleEnv

    return TorchCartPoleEnv(num_envs, device=device, max_episode_steps=max_episode_steps)


# --- actor and critic ---------------------------------------------------------------------------
@ACTORS.register("mlp")
def mlp_actor(
    env: "EnvBase",
    *,
    hidden_sizes: HiddenSizes = [64, 64],  # noqa: B006 (pydantic copies defaults)
    activation: Activation = "tanh",
    distribution: Literal["auto", "categorical", "normal", "tanh_normal"] = "auto",
    init_log_std: float = -0.5,
):
    """ProbabilisticActor over an MLP: categorical for discrete actions, Gaussian for Box."""
    from pgtorchrl.models import make_actor

    return make_actor(
        env.observation_spec["observation"],
        env.action_spec,
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
    init_preferences: Preferences = [-1.47, 1.47],  # noqa: B006
    prob_floor: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0,
    independent_runs: bool = False,
):
    """Textbook linear softmax over x(s,right)=[1,0], x(s,left)=[0,1]; independent_runs: a theta per env."""
    from pgtorchrl.short_corridor import make_corridor_actor

    num_runs = env.batch_size.numel() if independent_runs else None
    return make_corridor_actor(init_preferences, prob_floor, num_runs)


@CRITICS.register("scalar")
def scalar_critic(env: "EnvBase", *, init: float = 0.0, independent_runs: bool = False):
    """The textbook's scalar baseline v(s, w) = w (one w, or one per env with independent_runs)."""
    from torchrl.modules import ValueOperator

    from pgtorchrl.short_corridor import ScalarValue

    num_runs = env.batch_size.numel() if independent_runs else None
    return ValueOperator(ScalarValue(init, num_runs), in_keys=["observation"])


@CRITICS.register("mlp")
def mlp_critic(env: "EnvBase", *, hidden_sizes: HiddenSizes = [64, 64], activation: Activation = "tanh"):  # noqa: B006
    """ValueOperator over an MLP, writing ``state_value``."""
    from pgtorchrl.models import make_critic

    return make_critic(env.observation_spec["observation"], hidden_sizes=hidden_sizes, activation=activation)


# --- collection ---------------------------------------------------------------------------------
@COLLECTORS.register("sync")
def sync_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    frames_per_batch: PositiveInt,
    trajs_per_batch: Optional[PositiveInt] = None,
    backend: Literal["direct", "ray"] = "direct",
    num_collectors: Optional[Annotated[int, Field(ge=1, le=1024)]] = None,
    address: Optional[str] = None,
):
    """torchrl.collectors.Collector: in this process (backend direct), or on Ray workers (backend ray)."""
    if backend == "ray":
        from pgtorchrl.distributed import RayCollection

        return RayCollection(worker_envs, policy, total_frames, frames_per_batch, num_collectors or RAY_WORKERS, address)
    from torchrl.collectors import Collector

    return Collector(
        env,
        policy,
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        trajs_per_batch=trajs_per_batch,
        auto_register_policy_transforms=False,
    )


@COLLECTORS.register("native")
def native_collector(env: "EnvBase", policy, total_frames: int, worker_envs: "WorkerEnvs", *, frames_per_batch: PositiveInt):
    """Fixed-frame batches from a native env (gym_native, torch_cartpole, short_corridor) on a tensor fast path."""
    from pgtorchrl.collectors import NativeCollector
    from pgtorchrl.native import TorchNativeEnv

    if not isinstance(env, TorchNativeEnv):
        raise ValueError(
            f"collector 'native' needs a native env (gym_native, torch_cartpole, short_corridor), "
            f"got {type(env).__name__}: use collector 'sync'"
        )
    return NativeCollector(env, policy, frames_per_batch, total_frames)


@COLLECTORS.register("ray")
def ray_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    frames_per_batch: PositiveInt,
    num_collectors: Annotated[int, Field(ge=1, le=1024)] = RAY_WORKERS,
    address: Optional[str] = None,
):
    """Short for sync with backend ray: num_collectors Ray workers; address: an existing Ray cluster."""
    return sync_collector(env, policy, total_frames, worker_envs, frames_per_batch=frames_per_batch,
                          backend="ray", num_collectors=num_collectors, address=address)


@COLLECTORS.register("episodes")
def episodes_collector(
    env: "EnvBase", policy, total_frames: int, worker_envs: "WorkerEnvs", *, max_steps: Annotated[int, Field(ge=1, le=10**7)] = 100_000
):
    """One complete episode per env per batch, from a reset (i.i.d. episodes of the current policy)."""
    from pgtorchrl.collectors import EpisodeCollector

    return EpisodeCollector(env, policy, total_frames, max_steps=max_steps)


# --- advantages ---------------------------------------------------------------------------------
Truncation = Literal["bootstrap", "drop", "terminal"]
Baseline = Literal["auto", "none", "mean", "critic"]


def _monte_carlo_fields(
    critic,
    *,
    gamma: Probability = 0.99,
    baseline: Baseline = "auto",
    normalize: bool = False,
    truncation: Truncation = "bootstrap",
    gamma_t_factor: bool = False,
):
    """The spec fields shared by the Monte Carlo return estimators (signature only)."""


def _monte_carlo(class_name: str, summary: str):
    @functools.wraps(_monte_carlo_fields)
    def factory(critic, **fields):
        from pgtorchrl import advantage

        return getattr(advantage, class_name)(critic, **fields)

    factory.__doc__ = summary
    return factory


ADVANTAGES.register("full_return")(
    _monte_carlo("FullReturn", "G(tau) for every step of the episode, minus a state-only baseline; whole-episode batches.")
)
ADVANTAGES.register("reward_to_go")(
    _monte_carlo("RewardToGo", "G_t minus a state-only baseline (none, batch mean, or V(s_t): REINFORCE with baseline).")
)


@ADVANTAGES.register("td_error")
def td_error(
    critic,
    *,
    gamma: Probability = 0.99,
    normalize: bool = False,
    truncation: Truncation = "bootstrap",
    gamma_t_factor: bool = False,
):
    """One-step TD error r + gamma V(s') - V(s) as advantage; needs a critic."""
    from pgtorchrl.advantage import TDError

    return TDError(critic, gamma=gamma, normalize=normalize, truncation=truncation, gamma_t_factor=gamma_t_factor)


@ADVANTAGES.register("gae")
def gae(
    critic,
    *,
    gamma: Probability = 0.99,
    lmbda: Probability = 0.95,
    normalize: bool = False,
    truncation: Truncation = "bootstrap",
    gamma_t_factor: bool = False,
):
    """GAE(lambda) with the critic as baseline (vanilla policy gradient); needs a critic."""
    from pgtorchrl.advantage import GAE

    return GAE(critic, gamma=gamma, lmbda=lmbda, normalize=normalize, truncation=truncation, gamma_t_factor=gamma_t_factor)


# --- loss ---------------------------------------------------------------------------------------
@LOSSES.register("reinforce")
def reinforce(
    actor,
    critic,
    *,
    entropy_coef: NonNegativeFloat = 0.0,
    critic_coef: NonNegativeFloat = 1.0,
    loss_critic_type: Literal["l2", "l1", "smooth_l1"] = "l2",
    reduction: Literal["mean", "sum"] = "mean",
):
    """pgtorchrl's ReinforceLoss: -mean(log pi(a|s) * advantage), critic regression, entropy bonus."""
    from pgtorchrl.loss import ReinforceLoss

    return ReinforceLoss(
        actor,
        critic,
        entropy_coef=entropy_coef,
        critic_coef=critic_coef,
        loss_critic_type=loss_critic_type,
        reduction=reduction,
    )


# --- optimizers ---------------------------------------------------------------------------------
Betas = Annotated[list[Probability], Field(min_length=2, max_length=2)]


@OPTIMIZERS.register("adam")
def adam(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-3,
    betas: Betas = [0.9, 0.999],  # noqa: B006
    eps: PositiveFloat = 1.0e-8,
    weight_decay: NonNegativeFloat = 0.0,
) -> Any:
    """torch.optim.Adam."""
    import torch

    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-2,
    momentum: NonNegativeFloat = 0.0,
    weight_decay: NonNegativeFloat = 0.0,
) -> Any:
    """torch.optim.SGD (plain stochastic gradient ascent on the loss, as the textbook)."""
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    params: Iterable["torch.nn.Parameter"],
    *,
    lr: PositiveFloat = 1.0e-2,
    alpha: Probability = 0.99,
    eps: PositiveFloat = 1.0e-8,
) -> Any:
    """torch.optim.RMSprop."""
    import torch

    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps)
