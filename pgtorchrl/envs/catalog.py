"""The envs and env transforms a spec can name (``env:``, ``env.transforms:``), registered by name.

Each factory's keyword-only parameters are the YAML fields of its section (the names of the
constructor it calls); its positional parameter is wiring (the spec's ``device``). The env
modules are imported inside the factories: validating a spec (``pgtorchrl validate``, the
command line before it starts MLflow) reads these signatures without importing torch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeAlias

from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt

from pgtorchrl.config.fields import Keys
from pgtorchrl.config.registry import Registry
from pgtorchrl.envs.ids import check_atari_id, check_gym_id

if TYPE_CHECKING:
    from torchrl.envs import EnvBase

__all__ = ["ENVS", "TRANSFORMS"]

ENVS = Registry("env", wiring=("device",), base=("torchrl", "EnvBase"))
TRANSFORMS = Registry("transform", base=("torchrl", "Transform"))  # TorchRL env transforms, listed under env.transforms


def _known_gym_id(env_id: str) -> str:
    check_gym_id(env_id)
    return env_id


def _known_atari_id(env_id: str) -> str:
    check_atari_id(env_id)
    return env_id


GymId = Annotated[
    str,
    AfterValidator(_known_gym_id),
    Field(description="A registered gymnasium id (CartPole-v1, HalfCheetah-v5, MinAtar/Breakout-v1, ...)."),
]
AtariId = Annotated[
    str, AfterValidator(_known_atari_id), Field(description="An ALE game's NoFrameskip-v4 id (PongNoFrameskip-v4).")
]
GymEnvCount = Annotated[  # gymnasium envs are Python objects, stepped one by one
    int, Field(ge=1, le=4096, description="Copies of the env stepped side by side (the batch's first dimension).")
]


# --- env transforms (TorchRL's, by class name) -----------------------------------------------------
# Wiring: none. Each returns a torchrl.envs.Transform appended, in list order, after the env's own
# RewardSum and StepCounter (so rollout/ and eval/ returns stay the task's own rewards).
@TRANSFORMS.register("torchrl.VecNormV2")
def vec_norm(
    *,
    in_keys: Keys = ["observation"],
    decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9999,
    eps: PositiveFloat = 1.0e-4,
    reduce_batch_dims: bool = True,
):
    """torchrl.envs.VecNormV2: running-statistics normalization (the stats are part of the policy).
    reduce_batch_dims defaults to true here: one set of statistics over all envs."""
    from torchrl.envs import VecNormV2

    # a thread lock: VecNormV2's default multiprocessing lock is a semaphore that the resource tracker
    # reports as leaked when the command line leaves with os._exit; one process steps these envs
    # (a Ray worker gets a copy, which VecNormV2 pickles without its lock)
    lock = threading.Lock()
    return VecNormV2(in_keys=in_keys, decay=decay, eps=eps, reduce_batch_dims=reduce_batch_dims, lock=lock)


@TRANSFORMS.register("torchrl.ObservationNorm")
def observation_norm(
    *,
    loc: float = 0.0,
    scale: PositiveFloat = 1.0,
    in_keys: Keys = ["observation"],
    standard_normal: bool = False,
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


@TRANSFORMS.register("normalize_reward")
def normalize_reward(
    *,
    gamma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.99,
    eps: PositiveFloat = 1.0e-8,
    clip: Optional[PositiveFloat] = None,
):
    """pgtorchrl.envs.normalize_reward.NormalizeReward: reward / std of the discounted return (SB3's VecNormalize).

    The learner's reward divided by the running standard deviation of each env's gamma-discounted
    return (gymnasium's NormalizeReward), then clipped to [-clip, clip]; the logged returns stay the task's.

    Keyword Args:
        gamma: The discount of the return whose running std divides the reward.
        eps: Added to the variance before its square root.
        clip: The scaled reward clipped to [-clip, clip] (null: not clipped)."""
    from pgtorchrl.envs.normalize_reward import NormalizeReward

    return NormalizeReward(gamma=gamma, eps=eps, clip=clip)


if TYPE_CHECKING:  # built from the transforms registered above: to a type checker, any transform
    TransformSection: TypeAlias = Any
else:
    TransformSection = TRANSFORMS.spec_type()


# --- environments -------------------------------------------------------------------------------
# Wiring: the spec's top-level ``device``; the env (a torch-native one, its state too) lives there.
MakeKwargs = Annotated[
    dict[str, Any], Field(max_length=64, description="Keyword arguments to gymnasium.make (is_slippery: false).")
]
Transforms = Annotated[
    list[TransformSection],
    Field(description="TorchRL transforms by name (the transform kind), run in order after RewardSum and StepCounter."),
]


@ENVS.register("gym")
def gym_env(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
    make_kwargs: MakeKwargs = {},
    transforms: Transforms = [],
) -> "EnvBase":
    """A gymnasium id as one batched TorchRL env (GymWrapper); make_kwargs to gymnasium.make; TorchRL transforms.

    num_envs copies are stepped side by side; ``transforms`` are TorchRL transforms by name (see
    the ``transform`` kind), applied in order after the env's RewardSum and StepCounter."""
    from pgtorchrl.envs.gym import make_gym_env

    built = [TRANSFORMS.build(t) for t in transforms]
    return make_gym_env(env_id, num_envs, device=device, transforms=built, **make_kwargs)


@ENVS.register("atari")
def atari(
    device: str,
    *,
    env_id: AtariId,
    num_envs: GymEnvCount = 8,
    noop_max: Annotated[int, Field(ge=0, le=1000)] = 30,
    frame_skip: Annotated[int, Field(ge=1, le=16)] = 4,
    screen_size: Annotated[int, Field(ge=16, le=512)] = 84,
    frame_stack: Annotated[int, Field(ge=1, le=16)] = 4,
    fire_reset: bool = True,
    episodic_life: bool = True,
    clip_rewards: bool = True,
    make_kwargs: MakeKwargs = {},
    transforms: Transforms = [],
) -> "EnvBase":
    """An ALE game (pip install -e '.[atari]') with DQN's preprocessing; returns stay the game's score.

    See :mod:`pgtorchrl.envs.atari`. The learner's episodes and rewards are changed by
    ``episodic_life`` and ``clip_rewards``; ``rollout/`` and ``eval/`` returns stay the game's.

    Keyword Args:
        noop_max: At most this many random no-op actions after each reset.
        frame_skip: Frames per action, the last two max-pooled.
        screen_size: Frames resized to screen_size x screen_size grayscale.
        frame_stack: The last frame_stack frames stacked (uint8) as the observation.
        fire_reset: Press FIRE after each reset and lost life (games that wait for it).
        episodic_life: Each lost life ends the learner's episode (not the logged one).
        clip_rewards: The learner's rewards clipped to their sign (the logged returns stay the score)."""
    from pgtorchrl.envs.atari import make_atari_env

    return make_atari_env(
        env_id,
        num_envs,
        device=device,
        noop_max=noop_max,
        frame_skip=frame_skip,
        screen_size=screen_size,
        frame_stack=frame_stack,
        fire_reset=fire_reset,
        episodic_life=episodic_life,
        clip_rewards=clip_rewards,
        transforms=[TRANSFORMS.build(t) for t in transforms],
        **make_kwargs,
    )


@ENVS.register("gym_native")
def gym_native(
    device: str,
    *,
    env_id: GymId,
    num_envs: GymEnvCount = 8,
    make_kwargs: MakeKwargs = {},
    normalize_observations: bool = False,
    clip_observations: Optional[PositiveFloat] = None,
    normalize_rewards: bool = False,
    reward_gamma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.99,
    clip_rewards: Optional[PositiveFloat] = None,
) -> "EnvBase":
    """A gymnasium id (flat or image Box obs; Discrete or Box actions) on the tensor fast path; make_kwargs to gym.make.

    The fast path applies no TorchRL transforms: use env 'gym' for those. Images (MinAtar's
    bool frames) keep their dtype; ``normalize_observations`` takes flat observations only.

    Keyword Args:
        normalize_observations: Observations normalized by their running mean and variance (the
            statistic CleanRL, Tianshou and stable-baselines3 use; saved with the policy).
        clip_observations: The normalized observations then clipped to [-c, c] (null: not clipped).
        normalize_rewards: The learner's rewards divided by the running std of the
            reward_gamma-discounted return (gymnasium's NormalizeReward; logged returns stay the task's).
        reward_gamma: The discount of that return.
        clip_rewards: The normalized rewards then clipped to [-c, c] (null: not clipped)."""
    from pgtorchrl.envs.gym_native import GymNativeEnv

    return GymNativeEnv(
        env_id,
        num_envs,
        device=device,
        normalize_observations=normalize_observations,
        clip_observations=clip_observations,
        normalize_rewards=normalize_rewards,
        reward_gamma=reward_gamma,
        clip_rewards=clip_rewards,
        **make_kwargs,
    )


@ENVS.register("short_corridor")
def short_corridor(device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**7)] = 1) -> "EnvBase":
    """Sutton & Barto's short corridor with switched actions (Example 13.1), batched, in torch.

    Keyword Args:
        num_envs: Corridors stepped side by side in one tensor (one per independent run with
            the linear_softmax actor's independent_runs)."""
    from pgtorchrl.envs.custom.short_corridor import make_short_corridor

    return make_short_corridor(num_envs, device)


@ENVS.register("torch_cartpole")
def torch_cartpole(
    device: str, *, num_envs: Annotated[int, Field(ge=1, le=10**8)] = 8, max_episode_steps: PositiveInt = 500
) -> "EnvBase":
    """CartPole-v1 in torch (gymnasium's exact dynamics), many envs in one tensor, CPU or CUDA.

    Keyword Args:
        num_envs: Carts stepped side by side in one tensor.
        max_episode_steps: An episode is truncated after this many steps (gymnasium's 500)."""
    from pgtorchrl.envs.custom.cartpole import TorchCartPoleEnv

    return TorchCartPoleEnv(num_envs, device=device, max_episode_steps=max_episode_steps)
