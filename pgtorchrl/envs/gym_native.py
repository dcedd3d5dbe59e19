"""Gymnasium envs on the tensor fast path: ``num_envs`` copies stepped in one Python loop.

TorchRL's ``GymWrapper`` turns every step into TensorDicts, specs checks and transforms: about
1 ms per step of 8 CartPoles here, against some 0.1 ms for the gymnasium envs themselves. This
env steps the same gymnasium envs (``gym.make(env_id)``: its ``TimeLimit`` truncates) behind
:class:`~pgtorchrl.envs.native.TorchNativeEnv`'s tensor interface, so the ``native`` collector and
the evaluation drive it without per-step TensorDicts. It stays a TorchRL ``EnvBase``:
TorchRL's ``Collector`` and ``check_env_specs`` work on it as on any env.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torchrl.data import Bounded

from pgtorchrl.envs.ids import check_gym_id
from pgtorchrl.envs.native import TorchNativeEnv

__all__ = ["GymNativeEnv"]


class GymNativeEnv(TorchNativeEnv):
    """``num_envs`` copies of a gymnasium env with a flat ``Box`` observation and ``Discrete``
    (one-hot ``action``) or ``Box`` actions, as one batched TorchRL env.

    It writes the keys of ``GymWrapper`` with ``RewardSum`` and ``StepCounter``:
    ``observation`` (float64 becomes float32, the networks' dtype), ``reward``, ``done``,
    ``terminated``, ``truncated``, ``episode_reward`` and ``step_count``. ``set_seed(s)`` seeds
    sub-env ``i`` with ``s + i``, as gymnasium's vector envs do. A sub-env whose episode has
    ended is not stepped again until it is reset: its flags stay set and its reward is 0.

    Args:
        env_id: a registered gymnasium id.
        num_envs: envs stepped side by side.
        device: where the returned tensors live (the envs themselves run on CPU).
        **gym_kwargs: passed to ``gym.make`` (e.g. ``max_episode_steps``).

    Examples:
        >>> env = GymNativeEnv("CartPole-v1", num_envs=4)
        >>> env.rollout(3).batch_size
        torch.Size([4, 3])
    """

    _state_attrs = ("_obs", "_steps", "_returns", "_terminated", "_truncated")
    """The envs' last outputs, numpy arrays on CPU: a finished env repeats them until it is reset
    (numpy, because writing one env's row costs 0.1 us there and a few us in torch)."""

    def __init__(self, env_id: str, num_envs: int = 8, device: str | torch.device = "cpu", **gym_kwargs):
        check_gym_id(env_id)
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.envs = [gym.make(env_id, **gym_kwargs) for _ in range(num_envs)]
        obs_space, act_space = self.envs[0].observation_space, self.envs[0].action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"env 'gym_native' needs a flat Box observation; {env_id} has {obs_space}: use env 'gym'")
        if not isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(f"env 'gym_native' needs Discrete or Box actions; {env_id} has {act_space}: use env 'gym'")
        obs_np_dtype = np.float32 if obs_space.dtype == np.float64 else obs_space.dtype  # the networks' dtype
        obs_dtype = torch.from_numpy(np.zeros(0, obs_np_dtype)).dtype
        self._discrete = isinstance(act_space, gym.spaces.Discrete)
        self._standard_specs(n_actions=int(act_space.n) if self._discrete else 1, observation=(obs_space.shape[0], obs_dtype))
        if self._discrete:
            self._action_start = int(act_space.start)
        else:
            self._action_dtype = act_space.dtype
            shape = (num_envs, *act_space.shape)
            low, high = (torch.as_tensor(b, dtype=torch.float32).expand(shape) for b in (act_space.low, act_space.high))
            self.action_spec = Bounded(low, high, shape=shape, device=self.device)
        self._obs = np.zeros((num_envs, obs_space.shape[0]), dtype=obs_np_dtype)
        self._steps = np.zeros((num_envs, 1), dtype=np.int64)
        self._returns = np.zeros((num_envs, 1), dtype=np.float32)
        self._terminated = np.zeros((num_envs, 1), dtype=bool)
        self._truncated = np.zeros((num_envs, 1), dtype=bool)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            for i, env in enumerate(self.envs):
                env.reset(seed=seed + i)

    def _outputs(self, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
        # copies: the arrays change in place at the next step, a returned tensor must not
        out = {
            "observation": torch.tensor(self._obs),
            "step_count": torch.tensor(self._steps),
            "episode_reward": torch.tensor(self._returns),
            "done": torch.tensor(self._terminated | self._truncated),
            "terminated": torch.tensor(self._terminated),
            "truncated": torch.tensor(self._truncated),
            **extra,
        }
        return out if self.device.type == "cpu" else {k: v.to(self.device) for k, v in out.items()}

    def reset_tensors(self, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        rows = slice(None) if mask is None else mask.cpu().numpy()
        for i in range(len(self.envs)) if mask is None else rows.nonzero()[0]:
            self._obs[i], _ = self.envs[i].reset()
        for state in (self._steps, self._returns, self._terminated, self._truncated):
            state[rows] = 0
        return self._outputs()

    def step_tensors(self, action: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._discrete:
            actions = (action.to(torch.uint8).argmax(-1) + self._action_start).tolist()  # one-hot, perhaps bool
        else:
            actions = action.detach().cpu().numpy().astype(self._action_dtype, copy=False)
        reward = np.zeros((len(self.envs), 1), dtype=np.float32)
        live = ~(self._terminated | self._truncated)
        for i in live.nonzero()[0]:
            self._obs[i], reward[i], self._terminated[i], self._truncated[i], _ = self.envs[i].step(actions[i])
        self._steps += live
        self._returns += reward
        return self._outputs(reward=torch.from_numpy(reward))

    def state_tensors(self) -> dict:
        """The arrays above (as tensors) and every sub-env's state (its variables, its wrappers',
        its ``np_random``)."""
        from pgtorchrl.trainers.checkpoint import gym_env_state

        return {**{name: torch.tensor(getattr(self, name)) for name in self._state_attrs},
                "envs": [gym_env_state(env) for env in self.envs]}

    def load_state_tensors(self, state: dict) -> None:
        from pgtorchrl.trainers.checkpoint import CheckpointError, load_gym_env_state

        if len(state["envs"]) != len(self.envs):
            raise CheckpointError("the checkpoint's env state does not match this spec's env")
        for env, env_state in zip(self.envs, state["envs"]):
            load_gym_env_state(env, env_state)
        for name in self._state_attrs:
            getattr(self, name)[...] = state[name].numpy()
