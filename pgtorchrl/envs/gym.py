"""Environment factories: gymnasium ids through TorchRL, batched, with episode statistics."""

from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.data import Binary, MultiCategorical, MultiOneHot
from torchrl.envs import (
    Compose,
    DoubleToFloat,
    EnvBase,
    GymWrapper,
    InitTracker,
    RewardSum,
    StepCounter,
    TensorDictPrimer,
    Transform,
    TransformedEnv,
)

from pgtorchrl.envs.ids import check_gym_id

__all__ = [
    "make_gym_env",
    "TupleAsDict",
    "check_gym_id",
    "BUILT_IN_TRANSFORMS",
    "user_transforms",
    "transforms_state",
    "load_transforms_state",
    "freeze_transforms",
    "observation_transforms",
]

#: The transforms :func:`make_gym_env` itself puts first (DoubleToFloat where needed, RewardSum,
#: StepCounter), and those a recurrent network adds last (InitTracker, TensorDictPrimer:
#: :func:`pgtorchrl.modules.recurrent.add_memory`); they hold no statistics. A user's come between.
BUILT_IN_TRANSFORMS = (DoubleToFloat, RewardSum, StepCounter, InitTracker, TensorDictPrimer)


class TupleAsDict(gym.ObservationWrapper):
    """A gymnasium env whose ``Tuple`` observation is given as a ``Dict`` of its components,
    ``observation_0``, ``observation_1``, ... (each of its own space: a ``Discrete`` one is read
    one-hot by the models, :mod:`pgtorchrl.modules.encoders`)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        spaces = env.observation_space.spaces  # type: ignore[attr-defined]  # a Tuple space
        self.observation_space = gym.spaces.Dict({f"observation_{i}": space for i, space in enumerate(spaces)})

    def observation(self, observation):
        return {f"observation_{i}": part for i, part in enumerate(observation)}


def make_gym_env(
    env_id: str,
    num_envs: int = 8,
    *,
    device: str = "cpu",
    transforms: Sequence[Transform] = (),
    wrap: Callable[[gym.Env], gym.Env] | None = None,
    vector_class: type[gym.vector.SyncVectorEnv] = gym.vector.SyncVectorEnv,
    **gym_kwargs,
) -> TransformedEnv:
    """``num_envs`` copies of a gymnasium env stepped as one TorchRL env of batch size ``[num_envs]``.

    A gymnasium ``SyncVectorEnv`` with auto-reset disabled, wrapped by TorchRL's ``GymWrapper``
    (the fastest CPU path measured here: TorchRL resets finished sub-envs itself, so the final
    observation of a truncated episode stays available for bootstrapping). ``RewardSum`` writes
    ``episode_reward`` and ``StepCounter`` writes ``step_count``; both are read for the
    ``rollout/`` metrics. Float64 observations (MuJoCo's) become float32, the networks' dtype.
    ``transforms`` (TorchRL transforms: observation normalization, reward scaling, clipping)
    come after those, so ``episode_reward`` stays the task's own return. ``gym_kwargs`` go to
    ``gymnasium.make``; ``env_id`` may be gymnasium's ``module:EnvId``. A ``Tuple`` observation
    (Blackjack's) becomes one key per component, ``observation_0``, ``observation_1``, ...
    (:class:`TupleAsDict`): TorchRL's ``GymWrapper`` reads ``Dict`` spaces, not ``Tuple`` ones.
    ``wrap`` (gymnasium wrappers around each copy) and ``vector_class`` (a ``SyncVectorEnv``
    subclass) are for env families with their own preprocessing (:mod:`pgtorchrl.envs.atari`).

    >>> env = make_gym_env("CartPole-v1", num_envs=2)
    >>> env.batch_size
    torch.Size([2])
    """
    check_gym_id(env_id)

    def make():
        env = gym.make(env_id, **gym_kwargs)
        env = wrap(env) if wrap is not None else env
        return TupleAsDict(env) if isinstance(env.observation_space, gym.spaces.Tuple) else env

    autoreset = gym.vector.AutoresetMode.DISABLED
    vector_env = vector_class([make for _ in range(num_envs)], autoreset_mode=autoreset)
    env: EnvBase = GymWrapper(vector_env, device=device)
    _unbatch_multi_spaces(env, vector_env)
    built_in = [RewardSum(), StepCounter()]
    doubles = [k for k, spec in env.observation_spec.items(True, True) if spec.dtype == torch.float64]
    if doubles:
        built_in.insert(0, DoubleToFloat(in_keys=doubles))
    return TransformedEnv(env, Compose(*built_in, *transforms))


def _unbatch_multi_spaces(env: EnvBase, vector_env: gym.vector.VectorEnv) -> None:
    """The specs of ``MultiDiscrete`` and ``MultiBinary`` spaces from the single env's space:
    gymnasium batches them into a ``Box``, which TorchRL reads as a ``BoundedDiscrete``. The
    action becomes TorchRL's encoding of a single env's (``MultiOneHot``, converted back to
    indices on the way in; ``Binary``), a ``MultiDiscrete`` observation a ``MultiCategorical``
    (read one-hot by the models), a ``MultiBinary`` one a ``Binary``."""
    n = vector_env.num_envs
    action = vector_env.single_action_space
    if isinstance(action, gym.spaces.MultiDiscrete) and action.nvec.ndim == 1:
        nvec = [int(k) for k in action.nvec]
        env.action_spec = MultiOneHot(nvec=nvec, shape=(n, sum(nvec)), dtype=torch.bool, device=env.device)
    elif isinstance(action, gym.spaces.MultiBinary) and len(action.shape) == 1:
        env.action_spec = Binary(n=action.shape[0], shape=(n, action.shape[0]), dtype=torch.int8, device=env.device)
    single = vector_env.single_observation_space
    spaces = single.spaces if isinstance(single, gym.spaces.Dict) else {"observation": single}
    multi = {
        k: v
        for k, v in spaces.items()
        if (isinstance(v, gym.spaces.MultiDiscrete) and v.nvec.ndim == 1)
        or (isinstance(v, gym.spaces.MultiBinary) and len(v.shape) == 1)
    }
    if multi:
        observation_spec = env.observation_spec.clone()
        for key, space in multi.items():
            dtype = observation_spec[key].dtype
            if isinstance(space, gym.spaces.MultiBinary):
                observation_spec[key] = Binary(
                    n=space.shape[0], shape=(n, space.shape[0]), dtype=dtype, device=env.device
                )
                continue
            nvec = [int(k) for k in space.nvec]
            observation_spec[key] = MultiCategorical(nvec=nvec, shape=(n, len(nvec)), dtype=dtype, device=env.device)
        env.observation_spec = observation_spec


# -- a user's transforms: part of the policy where they act on observations ---------------------------
def user_transforms(env) -> list:
    """The transforms a user added to an env built by :func:`make_gym_env`, or those an env keeps
    itself as ``env.normalizers`` (``gym_native``'s observation statistics); none for other envs.
    Each has ``state_dict``/``load_state_dict`` and, where it has statistics, ``freeze``."""
    if not isinstance(env, TransformedEnv):
        return list(getattr(env, "normalizers", ()))
    return [t for t in env.transform if not isinstance(t, BUILT_IN_TRANSFORMS)]


def transforms_state(env) -> dict:
    """The state (running statistics ...) of an env's user transforms: tensors only, so it
    saves in checkpoints and loads with ``torch.load(weights_only=True)``."""
    return {str(i): t.state_dict() for i, t in enumerate(user_transforms(env))}


def load_transforms_state(env, state: dict | None) -> None:
    """Loads what :func:`transforms_state` returned into an env built from the same spec."""
    transforms = user_transforms(env)
    state = state or {}
    if len(transforms) != len(state):
        raise ValueError(f"the saved transform state has {len(state)} transforms, this env {len(transforms)}")
    for i, t in enumerate(transforms):
        t.load_state_dict(state[str(i)])


def freeze_transforms(env) -> None:
    """Stops an env's running statistics from moving (evaluation uses the training ones as they are)."""
    for t in user_transforms(env):
        if hasattr(t, "freeze"):
            t.freeze()


def observation_transforms(env) -> TensorDictModuleBase | None:
    """An env's user transforms that act on the policy's inputs, as one frozen module for a
    raw observation (``VecNormV2``, or ``gym_native``'s statistics, as the ``ObservationNorm`` of
    its current statistics), or
    ``None`` when there are none. ``load_actor`` puts it in front of the actor so a loaded
    policy acts on raw observations as it did in training."""
    observed = set(env.observation_spec.keys(True, True))
    parts = []
    for t in user_transforms(env):
        if not t.in_keys or not set(t.in_keys) <= observed:
            continue  # reward scaling, action clipping: not the policy's inputs
        parts.append(t.to_observation_norm() if hasattr(t, "to_observation_norm") else t.clone())
    return Compose(*parts).eval() if parts else None
