"""Environment factories: gymnasium ids through TorchRL, batched, with episode statistics."""
from __future__ import annotations

import gymnasium as gym
import torch
from torchrl.envs import Compose, DoubleToFloat, EnvBase, GymWrapper, RewardSum, StepCounter, TransformedEnv

from pgtorchrl.gym_ids import check_gym_id

__all__ = ["make_gym_env", "check_gym_id"]


def make_gym_env(env_id: str, num_envs: int = 8, *, device: str = "cpu", **gym_kwargs) -> TransformedEnv:
    """``num_envs`` copies of a gymnasium env stepped as one TorchRL env of batch size ``[num_envs]``.

    A gymnasium ``SyncVectorEnv`` with auto-reset disabled, wrapped by TorchRL's ``GymWrapper``
    (the fastest CPU path measured here: TorchRL resets finished sub-envs itself, so the final
    observation of a truncated episode stays available for bootstrapping). ``RewardSum`` writes
    ``episode_reward`` and ``StepCounter`` writes ``step_count``; both are read for the
    ``rollout/`` metrics. Float64 observations (MuJoCo's) become float32, the networks' dtype.

    >>> env = make_gym_env("CartPole-v1", num_envs=2)
    >>> env.batch_size
    torch.Size([2])
    """
    check_gym_id(env_id)
    vector_env = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **gym_kwargs) for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.DISABLED,
    )
    env: EnvBase = GymWrapper(vector_env, device=device)
    transforms = [RewardSum(), StepCounter()]
    doubles = [k for k, spec in env.observation_spec.items(True, True) if spec.dtype == torch.float64]
    if doubles:
        transforms.insert(0, DoubleToFloat(in_keys=doubles))
    return TransformedEnv(env, Compose(*transforms))

