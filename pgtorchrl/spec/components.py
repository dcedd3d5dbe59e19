"""Every component a pipeline spec can name, by kind.

Each factory's keyword-only parameters are the YAML fields of its section (same names as the
constructor it calls). Heavy libraries are imported inside the factories, so reading and
validating a spec stays cheap.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Literal, Optional

from pydantic import AfterValidator, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from pgtorchrl.modules.choices import Activation, Distribution
from pgtorchrl.objectives.choices import CriticLossType
from pgtorchrl.objectives.value.options import ESTIMATORS, Estimator, Probability, option_fields
from pgtorchrl.spec.registry import Registry

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase

    from pgtorchrl.collectors.ray import WorkerEnvs

__all__ = ["RAY_WORKERS", "ENVS", "TRANSFORMS", "ACTORS", "CRITICS", "COLLECTORS", "ADVANTAGES", "LOSSES", "OPTIMIZERS",
           "REGISTRIES", "TORCHRL_PREFIX"]

RAY_WORKERS = 2  # Ray collector workers when a spec names none

ENVS = Registry("env")
TRANSFORMS = Registry("transform")  # TorchRL env transforms, listed under env.transforms
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

#: Registry names of TorchRL's own components start with this (``torchrl.A2CLoss``): the rest are pgtorchrl's.
TORCHRL_PREFIX = "torchrl."

Keys = Annotated[list[str], Field(min_length=1, max_length=64)]
HiddenSizes = Annotated[list[PositiveInt], Field(max_length=16)]


def _known_gym_id(env_id: str) -> str:
    from pgtorchrl.envs.ids import check_gym_id

    check_gym_id(env_id)
    return env_id


GymId = Annotated[str, AfterValidator(_known_gym_id)]
GymEnvCount = Annotated[int, Field(ge=1, le=4096)]
FramesPerBatch = Annotated[int, Field(ge=1, le=10**8)]  # 1M GPU envs x 16 steps is 1.6e7; more cannot be held  # gymnasium envs are Python objects, stepped one by one


# --- env transforms (TorchRL's, by class name) -----------------------------------------------------
# Wiring: none. Each returns a torchrl.envs.Transform appended, in list order, after the env's own
# RewardSum and StepCounter (so rollout/ and eval/ returns stay the task's own rewards).
@TRANSFORMS.register("torchrl.VecNormV2")
def vec_norm(
    *,
    in_keys: Keys = ["observation"],  # noqa: B006
    decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9999,
    eps: PositiveFloat = 1.0e-4,
    reduce_batch_dims: bool = True,
):
    """torchrl.envs.VecNormV2: running-statistics normalization (the stats are part of the policy).
    reduce_batch_dims defaults to true here: one set of statistics over all envs."""
    from torchrl.envs import VecNormV2

    return VecNormV2(in_keys=in_keys, decay=decay, eps=eps, reduce_batch_dims=reduce_batch_dims)


@TRANSFORMS.register("torchrl.ObservationNorm")
def observation_norm(
    *, loc: float = 0.0, scale: PositiveFloat = 1.0, in_keys: Keys = ["observation"], standard_normal: bool = False  # noqa: B006
):
    """torchrl.envs.ObservationNorm with fixed loc and scale (obs * scale + loc, or (obs - loc) / scale)."""
    from torchrl.envs import ObservationNorm

    return ObservationNorm(loc=loc, scale=scale, in_keys=in_keys, standard_normal=standard_normal)


@TRANSFORMS.register("torchrl.RewardScaling")
def reward_scaling(*, loc: float = 0.0, scale: PositiveFloat = 1.0, standard_normal: bool = False):
    """torchrl.envs.RewardScaling: the reward the learner sees is reward * scale + loc."""
    from torchrl.envs import RewardScaling

    return RewardScaling(loc=loc, scale=scale, standard_normal=standard_normal)


@TRANSFORMS.register("torchrl.ClipTransform")
def clip_transform(
    *,
    in_keys: Optional[list[str]] = None,
    in_keys_inv: Optional[list[str]] = None,
    low: Optional[float] = None,
    high: Optional[float] = None,
):
    """torchrl.envs.ClipTransform: clips in_keys (observations) and in_keys_inv (e.g. [action]) to [low, high]."""
    from torchrl.envs import ClipTransform

    return ClipTransform(in_keys=in_keys, in_keys_inv=in_keys_inv, low=low, high=high)


# --- environments -------------------------------------------------------------------------------
# Wiring: the spec's top-level ``device``; the env (a torch-native one, its state too) lives there.
MakeKwargs = Annotated[dict[str, Any], Field(max_length=64)]


@ENVS.register("gym")
def gym_env(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
    make_kwargs: MakeKwargs = {},  # noqa: B006
    transforms: list[TRANSFORMS.spec_type()] = [],  # noqa: B006
) -> "EnvBase":
    """A gymnasium id as one batched TorchRL env (GymWrapper); make_kwargs to gymnasium.make; TorchRL transforms.

    num_envs copies are stepped side by side; ``transforms`` are TorchRL transforms by name (see
    the ``transform`` kind), applied in order after the env's RewardSum and StepCounter."""
    from pgtorchrl.envs.gym import make_gym_env

    built = [TRANSFORMS.build(t) for t in transforms]
    return make_gym_env(env_id, num_envs, device=device, transforms=built, **make_kwargs)


@ENVS.register("gym_native")
def gym_native(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
    make_kwargs: MakeKwargs = {},  # noqa: B006
    normalize_observations: bool = False,
    clip_observations: Optional[PositiveFloat] = None,
    normalize_rewards: bool = False,
    reward_gamma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.99,
    clip_rewards: Optional[PositiveFloat] = None,
) -> "EnvBase":
    """A gymnasium id (flat Box obs; Discrete or Box actions) on the tensor fast path; make_kwargs to gymnasium.make.

    normalize_observations: observations normalized by their running mean and variance (the
    statistic CleanRL, Tianshou and stable-baselines3 use; saved with the policy);
    clip_observations: then clipped to [-c, c]; normalize_rewards: the learner's rewards divided
    by the running std of the reward_gamma-discounted return (gymnasium's NormalizeReward; the
    logged returns stay the task's), clip_rewards: then clipped. The fast path applies no TorchRL
    transforms: use env 'gym' for those."""
    from pgtorchrl.envs.gym_native import GymNativeEnv

    return GymNativeEnv(env_id, num_envs, device=device, normalize_observations=normalize_observations,
                        clip_observations=clip_observations, normalize_rewards=normalize_rewards,
                        reward_gamma=reward_gamma, clip_rewards=clip_rewards, **make_kwargs)


@ENVS.register("short_corridor")
def short_corridor(device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**7)] = 1) -> "EnvBase":
    """Sutton & Barto's short corridor with switched actions (Example 13.1), batched, in torch."""
    from pgtorchrl.envs.custom.short_corridor import make_short_corridor

    return make_short_corridor(num_envs, device)


@ENVS.register("torch_cartpole")
def torch_cartpole(
    device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**8)] = 8, max_episode_steps: PositiveInt = 500
) -> "EnvBase":
    """CartPole-v1 in torch (gymnasium's exact dynamics), many envs in one tensor, CPU or CUDA."""
    from pgtorchrl.envs.custom.cartpole import TorchCartPoleEnv

    return TorchCartPoleEnv(num_envs, device=device, max_episode_steps=max_episode_steps)


# --- actor and critic ---------------------------------------------------------------------------
@ACTORS.register("mlp")
def mlp_actor(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],  # noqa: B006 (pydantic copies defaults)
    hidden_sizes: HiddenSizes = [64, 64],  # noqa: B006
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
    init_preferences: Preferences = [-1.47, 1.47],  # noqa: B006
    prob_floor: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0,
    independent_runs: bool = False,
):
    """Textbook linear softmax over x(s,right)=[1,0], x(s,left)=[0,1]; independent_runs: a theta per env."""
    from pgtorchrl.envs.custom.short_corridor import make_corridor_actor

    num_runs = env.batch_size.numel() if independent_runs else None
    return make_corridor_actor(init_preferences, prob_floor, num_runs)


@CRITICS.register("scalar")
def scalar_critic(env: "EnvBase", *, init: float = 0.0, independent_runs: bool = False):
    """The textbook's scalar baseline v(s, w) = w (one w, or one per env with independent_runs)."""
    from torchrl.modules import ValueOperator

    from pgtorchrl.envs.custom.short_corridor import ScalarValue

    num_runs = env.batch_size.numel() if independent_runs else None
    return ValueOperator(ScalarValue(init, num_runs), in_keys=["observation"])


@CRITICS.register("mlp")
def mlp_critic(
    env: "EnvBase",
    *,
    in_keys: Keys = ["observation"],  # noqa: B006
    hidden_sizes: HiddenSizes = [64, 64],  # noqa: B006
    activation: Activation = "tanh",
):
    """ValueOperator over an MLP reading in_keys, writing state_value."""
    from pgtorchrl.modules.models import make_critic

    return make_critic(env.observation_spec, in_keys=in_keys, hidden_sizes=hidden_sizes, activation=activation)


# --- collection ---------------------------------------------------------------------------------
@COLLECTORS.register("sync")
def sync_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    frames_per_batch: FramesPerBatch,
    trajs_per_batch: Optional[PositiveInt] = None,
    backend: Literal["direct", "ray"] = "direct",
    num_collectors: Optional[Annotated[int, Field(ge=1, le=1024)]] = None,
    address: Optional[str] = None,
):
    """torchrl.collectors.Collector: in this process (backend direct), or on Ray workers (backend ray)."""
    if backend == "ray":
        from pgtorchrl.collectors.ray import RayCollection

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
def native_collector(env: "EnvBase", policy, total_frames: int, worker_envs: "WorkerEnvs", *, frames_per_batch: FramesPerBatch):
    """Fixed-frame batches from a native env (gym_native, torch_cartpole, short_corridor) on a tensor fast path."""
    from pgtorchrl.collectors.rollout import NativeCollector
    from pgtorchrl.envs.native import TorchNativeEnv

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
    frames_per_batch: FramesPerBatch,
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
    from pgtorchrl.collectors.rollout import EpisodeCollector

    return EpisodeCollector(env, policy, total_frames, max_steps=max_steps)


# --- advantages ---------------------------------------------------------------------------------
# pgtorchrl's estimators: their fields, choices and the critic rule are written once, in
# pgtorchrl.objectives.value.options (torch-free), for the classes and the spec alike.
def _estimator(name: str, entry: Estimator):
    """The factory of estimator ``name``: ``advantages.<class>(critic, **fields)``, whose spec
    fields are the options class's fields."""

    def factory(critic, **fields):
        from pgtorchrl.objectives.value import advantages

        return getattr(advantages, entry.class_name)(critic, **fields)

    params = [inspect.Parameter("critic", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
               for field, annotation, default in option_fields(entry.options)]
    factory.__signature__ = inspect.Signature(params)
    factory.__doc__ = entry.summary
    factory.__name__ = name
    return factory


for _name, _entry in ESTIMATORS.items():
    ADVANTAGES.register(_name)(_estimator(_name, _entry))


# --- TorchRL's value estimators (torchrl.objectives.value), by class name ----------------------------
def _needs_critic(kind: str, name: str, critic, argument: str) -> None:
    """TorchRL's estimators and losses take a critic as their ``argument`` (``value_network``, ``critic_network``)."""
    if critic is None:
        raise ValueError(f"{kind} {name!r} needs a critic (its {argument}): add a `critic:` section")


@ADVANTAGES.register("torchrl.GAE")
def torchrl_gae(critic, *, gamma: Probability = 0.99, lmbda: Probability = 0.95, average_gae: bool = False):
    """torchrl.objectives.value.GAE (value_network = the critic); average_gae standardizes the advantage."""
    from torchrl.objectives.value import GAE

    _needs_critic("advantage", "torchrl.GAE", critic, "value_network")
    return GAE(gamma=gamma, lmbda=lmbda, value_network=critic, average_gae=average_gae)


@ADVANTAGES.register("torchrl.TD0Estimator")
def torchrl_td0(critic, *, gamma: Probability = 0.99, average_rewards: bool = False):
    """torchrl.objectives.value.TD0Estimator: the one-step TD error r + gamma V(s') - V(s) (value_network = the critic)."""
    from torchrl.objectives.value import TD0Estimator

    _needs_critic("advantage", "torchrl.TD0Estimator", critic, "value_network")
    return TD0Estimator(gamma=gamma, value_network=critic, average_rewards=average_rewards)


@ADVANTAGES.register("torchrl.TDLambdaEstimator")
def torchrl_td_lambda(critic, *, gamma: Probability = 0.99, lmbda: Probability = 0.95, average_rewards: bool = False):
    """torchrl.objectives.value.TDLambdaEstimator: the TD(lambda) return minus V(s) (value_network = the critic)."""
    from torchrl.objectives.value import TDLambdaEstimator

    _needs_critic("advantage", "torchrl.TDLambdaEstimator", critic, "value_network")
    return TDLambdaEstimator(gamma=gamma, lmbda=lmbda, value_network=critic, average_rewards=average_rewards)


# --- loss ---------------------------------------------------------------------------------------
@LOSSES.register("reinforce")
def reinforce(
    actor,
    critic,
    *,
    entropy_coeff: NonNegativeFloat = 0.0,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "l2",
    reduction: Literal["mean", "sum"] = "mean",
):
    """pgtorchrl's ReinforceLoss: -mean(log pi(a|s) * advantage), critic regression, entropy bonus; critic optional."""
    from pgtorchrl.objectives.reinforce import ReinforceLoss

    return ReinforceLoss(
        actor,
        critic,
        entropy_coeff=entropy_coeff,
        critic_coeff=critic_coeff,
        loss_critic_type=loss_critic_type,
        reduction=reduction,
    )


@LOSSES.register("torchrl.A2CLoss")
def torchrl_a2c(
    actor,
    critic,
    *,
    entropy_bonus: bool = True,
    entropy_coeff: NonNegativeFloat = 0.01,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "smooth_l1",
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
):
    """torchrl.objectives.A2CLoss (loss_objective, loss_critic, loss_entropy); needs a critic."""
    from torchrl.objectives import A2CLoss

    _needs_critic("loss", "torchrl.A2CLoss", critic, "critic_network")
    return A2CLoss(
        actor, critic, entropy_bonus=entropy_bonus, entropy_coeff=entropy_coeff, critic_coeff=critic_coeff,
        loss_critic_type=loss_critic_type, reduction=reduction, clip_value=clip_value,
    )


@LOSSES.register("torchrl.ReinforceLoss")
def torchrl_reinforce(
    actor,
    critic,
    *,
    loss_critic_type: CriticLossType = "smooth_l1",
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
):
    """torchrl.objectives.ReinforceLoss (loss_actor, loss_value); needs a critic, has no entropy term."""
    from torchrl.objectives import ReinforceLoss

    _needs_critic("loss", "torchrl.ReinforceLoss", critic, "critic_network")
    return ReinforceLoss(actor, critic, loss_critic_type=loss_critic_type, reduction=reduction, clip_value=clip_value)


def _ppo_fields(
    actor,
    critic,
    *,
    entropy_bonus: bool = True,
    entropy_coeff: NonNegativeFloat = 0.01,
    critic_coeff: NonNegativeFloat = 1.0,
    loss_critic_type: CriticLossType = "smooth_l1",
    normalize_advantage: bool = False,
    reduction: Literal["mean", "sum"] = "mean",
    clip_value: Optional[PositiveFloat] = None,
    functional: bool = True,
):
    """The spec fields TorchRL's PPO losses share (signature only: the keyword names of their constructors).

    functional: false calls the actor and critic as they are instead of through TorchRL's
    functional parameters (the same losses; about 15% faster per minibatch on CPU here)."""


def _ppo(cls_name: str, summary: str, **own: tuple[Any, Any]):
    """A factory of ``torchrl.objectives.<cls_name>`` whose spec fields are :func:`_ppo_fields`'
    plus ``own`` (``name=(annotation, default)``); the loss reads the log-probability key
    pgtorchrl's actors write."""
    shared = inspect.signature(_ppo_fields)
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=t, default=d) for k, (t, d) in own.items()]
    params = list(shared.parameters.values())

    def factory(actor, critic, **fields):
        from torchrl import objectives

        from pgtorchrl.modules.models import LOG_PROB_KEY

        _needs_critic("loss", f"torchrl.{cls_name}", critic, "critic_network")
        loss = getattr(objectives, cls_name)(actor, critic, **fields)
        loss.set_keys(sample_log_prob=LOG_PROB_KEY)
        return loss

    factory.__signature__ = shared.replace(parameters=params[:2] + extra + params[2:])
    factory.__doc__ = summary
    return factory


LOSSES.register("torchrl.PPOLoss")(_ppo(
    "PPOLoss", "torchrl.objectives.PPOLoss: the unclipped surrogate -mean(ratio * advantage) (NPG's and TRPO's objective)."))
LOSSES.register("torchrl.ClipPPOLoss")(_ppo(
    "ClipPPOLoss", "torchrl.objectives.ClipPPOLoss: PPO's clipped surrogate (train.epochs, train.minibatches, train.target_kl).",
    clip_epsilon=(Annotated[float, Field(gt=0.0, lt=1.0)], 0.2)))
LOSSES.register("torchrl.KLPENPPOLoss")(_ppo(
    "KLPENPPOLoss", "torchrl.objectives.KLPENPPOLoss: PPO's adaptive KL-penalty surrogate.",
    dtarg=(PositiveFloat, 0.01), beta=(PositiveFloat, 1.0)))


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
    foreach: Optional[bool] = None,
    fused: Optional[bool] = None,
) -> Any:
    """torch.optim.Adam. fused: true updates every parameter in one kernel (on CPU about 3x faster
    than torch's default per-tensor loop for the small networks here; the same update up to rounding)."""
    import torch

    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                            fused=fused)


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


@OPTIMIZERS.register("npg")
def npg(
    params: Iterable["torch.nn.Parameter"],
    *,
    max_kl: PositiveFloat = 0.01,
    damping: NonNegativeFloat = 0.1,
    cg_iters: Annotated[int, Field(ge=1, le=1000)] = 10,
) -> Any:
    """Natural policy gradient (Kakade 2001): a step of mean KL max_kl along F^-1 g (actor only)."""
    from pgtorchrl.objectives.trust_region import NaturalPolicyGradient

    return NaturalPolicyGradient(params, max_kl=max_kl, damping=damping, cg_iters=cg_iters)


@OPTIMIZERS.register("trpo")
def trpo(
    params: Iterable["torch.nn.Parameter"],
    *,
    max_kl: PositiveFloat = 0.01,
    damping: NonNegativeFloat = 0.1,
    cg_iters: Annotated[int, Field(ge=1, le=1000)] = 10,
    backtrack_coeff: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8,
    max_backtracks: Annotated[int, Field(ge=1, le=100)] = 10,
) -> Any:
    """TRPO (Schulman et al. 2015): the natural step, then a line search keeping KL <= max_kl (actor only)."""
    from pgtorchrl.objectives.trust_region import TRPO

    return TRPO(params, max_kl=max_kl, damping=damping, cg_iters=cg_iters, backtrack_coeff=backtrack_coeff,
                max_backtracks=max_backtracks)
