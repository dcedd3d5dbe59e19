"""Gymnasium envs on the tensor fast path: ``num_envs`` copies stepped in one Python loop.

TorchRL's ``GymWrapper`` turns every step into TensorDicts, specs checks and transforms: about
1 ms per step of 8 CartPoles here, against some 0.1 ms for the gymnasium envs themselves. This
env steps the same gymnasium envs (``gym.make(env_id)``: its ``TimeLimit`` truncates) behind
:class:`~pgtorchrl.envs.native.TorchNativeEnv`'s tensor interface, so the ``native`` collector and
the evaluation drive it without per-step TensorDicts. It stays a TorchRL ``EnvBase``:
TorchRL's ``Collector`` and ``check_env_specs`` work on it as on any env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torchrl.data import Bounded

from pgtorchrl.envs.ids import check_gym_id
from pgtorchrl.envs.native import TorchNativeEnv
from pgtorchrl.envs.normalization import RunningObservationNorm, RunningRewardScale
from pgtorchrl.envs.state import CheckpointError, gym_env_state, load_gym_env_state

__all__ = ["GymNativeEnv"]


class GymNativeEnv(TorchNativeEnv):
    """``num_envs`` copies of a gymnasium env with a flat or image ``Box`` observation (rank 1,
    or rank 3 such as MinAtar's bool ``[10, 10, C]`` frames) and ``Discrete`` (one-hot
    ``action``) or ``Box`` actions, as one batched TorchRL env.

    It writes the keys of ``GymWrapper`` with ``RewardSum`` and ``StepCounter``:
    ``observation`` (float64 becomes float32, the networks' dtype; other dtypes, an image's bool
    or uint8, stay as they are), ``reward``, ``done``,
    ``terminated``, ``truncated``, ``episode_reward`` and ``step_count``. ``set_seed(s)`` seeds
    sub-env ``i`` with ``s + i``, as gymnasium's vector envs do. A sub-env whose episode has
    ended is not stepped again until it is reset: its flags stay set and its reward is 0.

    With ``normalize_observations``, ``observation`` is normalized by the running mean and
    variance of every observation the envs produced (:mod:`pgtorchrl.envs.normalization`: the
    statistic of CleanRL, Tianshou and stable-baselines3), clipped to ``+-clip_observations``
    when given; the statistics are the env's one transform (:attr:`normalizers`), saved with
    checkpoints and the trained policy as a ``gym`` env's ``VecNormV2`` is. With
    ``normalize_rewards``, ``reward`` (what the learner sees) is divided by the running standard
    deviation of the discounted return (gymnasium's ``NormalizeReward``, discount ``reward_gamma``),
    clipped to ``+-clip_rewards`` when given; ``episode_reward`` stays the task's return.

    Args:
        env_id: a registered gymnasium id.
        num_envs: envs stepped side by side.
        device: where the returned tensors live (the envs themselves run on CPU).
        normalize_observations: normalize ``observation`` by running statistics (flat observations only).
        clip_observations: clip the normalized observation to ``[-c, c]`` (with ``normalize_observations``).
        normalize_rewards: scale rewards by the running std of the discounted return.
        reward_gamma: that return's discount.
        clip_rewards: clip the scaled reward to ``[-c, c]`` (with ``normalize_rewards``).
        **gym_kwargs: passed to ``gym.make`` (e.g. ``max_episode_steps``).

    Examples:
        >>> env = GymNativeEnv("CartPole-v1", num_envs=4)
        >>> env.rollout(3).batch_size
        torch.Size([4, 3])
    """

    _state_attrs = ("_obs", "_steps", "_returns", "_terminated", "_truncated")
    """The envs' last outputs, numpy arrays on CPU: a finished env repeats them until it is reset
    (numpy, because writing one env's row costs 0.1 us there and a few us in torch)."""
    _step_attrs = ("_last_done",)

    def __init__(
        self,
        env_id: str,
        num_envs: int = 8,
        device: str | torch.device = "cpu",
        *,
        normalize_observations: bool = False,
        clip_observations: float | None = None,
        normalize_rewards: bool = False,
        reward_gamma: float = 0.99,
        clip_rewards: float | None = None,
        **gym_kwargs,
    ):
        check_gym_id(env_id)
        if clip_observations is not None and not normalize_observations:
            raise ValueError("clip_observations clips normalized observations: set normalize_observations: true too")
        if clip_rewards is not None and not normalize_rewards:
            raise ValueError("clip_rewards clips normalized rewards: set normalize_rewards: true too")
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.envs = [gym.make(env_id, **gym_kwargs) for _ in range(num_envs)]
        obs_space, act_space = self.envs[0].observation_space, self.envs[0].action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) not in (1, 3):
            raise ValueError(
                f"env 'gym_native' needs a flat or image (rank 3) Box observation; {env_id} has {obs_space}: "
                "use env 'gym'"
            )
        if normalize_observations and len(obs_space.shape) != 1:
            raise ValueError(
                f"normalize_observations normalizes flat observations; {env_id}'s is an image {obs_space.shape}: "
                "leave it false (the image encoders scale their inputs)"
            )
        if not isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(f"env 'gym_native' needs Discrete or Box actions; {env_id} has {act_space}: use env 'gym'")
        obs_np_dtype = np.float32 if obs_space.dtype == np.float64 else obs_space.dtype  # the networks' dtype
        obs_dtype = torch.from_numpy(np.zeros(0, obs_np_dtype)).dtype
        self._discrete = isinstance(act_space, gym.spaces.Discrete)
        n_actions = int(act_space.n) if isinstance(act_space, gym.spaces.Discrete) else 1
        self._standard_specs(n_actions=n_actions, observation=(tuple(obs_space.shape), obs_dtype))
        if isinstance(act_space, gym.spaces.Discrete):
            self._action_start = int(act_space.start)
        else:
            self._action_dtype = act_space.dtype
            shape = (num_envs, *act_space.shape)
            low, high = (torch.as_tensor(b, dtype=torch.float32).expand(shape) for b in (act_space.low, act_space.high))
            self.action_spec = Bounded(low, high, shape=shape, device=self.device)
        self._obs = np.zeros((num_envs, *obs_space.shape), dtype=obs_np_dtype)
        self._steps = np.zeros((num_envs, 1), dtype=np.int64)
        self._returns = np.zeros((num_envs, 1), dtype=np.float32)
        self._terminated = np.zeros((num_envs, 1), dtype=bool)
        self._truncated = np.zeros((num_envs, 1), dtype=bool)
        self.normalizers: tuple[RunningObservationNorm, ...] = (
            (RunningObservationNorm(obs_space.shape[0], clip=clip_observations),) if normalize_observations else ()
        )
        """The env's own transforms (:func:`pgtorchrl.envs.gym.user_transforms`): the observation
        statistics, or none."""
        self._reward_scale = (
            RunningRewardScale(num_envs, reward_gamma, clip=clip_rewards) if normalize_rewards else None
        )
        self._last_done: tuple[torch.Tensor, bool] | None = None
        """The latest step's ``done`` tensor and whether any of it is true (:meth:`_any_done`)."""

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            for i, env in enumerate(self.envs):
                env.reset(seed=seed + i)

    def _outputs(self, reward: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        # copies: the arrays change in place at the next step, a returned tensor must not
        obs = self.normalizers[0](self._obs) if self.normalizers else self._obs.copy()
        out = {  # from_numpy of a copy: a third of torch.tensor's cost on these small arrays
            "observation": torch.from_numpy(obs),
            "step_count": torch.from_numpy(self._steps.copy()),
            "episode_reward": torch.from_numpy(self._returns.copy()),
            "done": torch.from_numpy(self._terminated | self._truncated),
            "terminated": torch.from_numpy(self._terminated.copy()),
            "truncated": torch.from_numpy(self._truncated.copy()),
        }
        if reward is not None:
            out["reward"] = reward
        return out if self.device.type == "cpu" else {k: v.to(self.device) for k, v in out.items()}

    def reset_tensors(self, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        rows: Any = slice(None) if mask is None else mask.cpu().numpy()  # a slice, or a row mask
        reset = range(len(self.envs)) if mask is None else rows.nonzero()[0]
        for i in reset:
            self._obs[i], _ = self.envs[i].reset()
        if self.normalizers:
            self.normalizers[0].update(self._obs[reset])
        for state in (self._steps, self._returns, self._terminated, self._truncated):
            state[rows] = 0
        return self._outputs()

    def step_tensors(self, action: torch.Tensor) -> dict[str, torch.Tensor]:
        actions: list | np.ndarray
        if self._discrete:
            actions = (action.to(torch.uint8).argmax(-1) + self._action_start).tolist()  # one-hot, perhaps bool
        else:
            actions = action.detach().cpu().numpy().astype(self._action_dtype, copy=False)
        # one env at a time on its own row, with scalar writes: at one MuJoCo env, the masks,
        # nonzero() and row updates of the vectorized form cost a third of gymnasium's step
        obs, steps, returns, terminated, truncated = (
            self._obs,
            self._steps,
            self._returns,
            self._terminated,
            self._truncated,
        )
        reward = np.zeros((len(self.envs), 1), dtype=np.float32)
        stepped, any_done = [], False
        for i, env in enumerate(self.envs):
            if terminated[i, 0] or truncated[i, 0]:
                any_done = True  # finished: not stepped again until it is reset
                continue
            obs[i], reward[i, 0], ended, cut, _ = env.step(actions[i])
            terminated[i, 0], truncated[i, 0] = ended, cut
            steps[i, 0] += 1
            returns[i, 0] += reward[i, 0]
            any_done = any_done or bool(ended or cut)
            stepped.append(i)
        if self.normalizers:
            self.normalizers[0].update(obs if len(stepped) == len(self.envs) else obs[stepped])
        if self._reward_scale is not None:  # after episode_reward took the task's own reward
            reward = self._reward_scale(reward, terminated, stepped)
        out = self._outputs(torch.from_numpy(reward))
        self._last_done = (out["done"], any_done)
        return out

    def _any_done(self, step: dict[str, torch.Tensor]) -> bool:
        """The flag :meth:`step_tensors` kept when ``step`` is its latest output (a torch ``any()``
        costs more), else the tensor's own answer."""
        if self._last_done is not None and self._last_done[0] is step["done"]:
            return self._last_done[1]
        return super()._any_done(step)

    def state_tensors(self) -> dict:
        """The arrays above (as tensors), every sub-env's state (its variables, its wrappers',
        its ``np_random``) and the reward scale's statistics (the observation statistics are a
        transform's: :func:`pgtorchrl.envs.gym.transforms_state`)."""
        state = {
            **{name: torch.tensor(getattr(self, name)) for name in self._state_attrs},
            "envs": [gym_env_state(env) for env in self.envs],
        }
        if self._reward_scale is not None:
            state["reward_scale"] = self._reward_scale.state_dict()
        return state

    def load_state_tensors(self, state: dict) -> None:
        if len(state["envs"]) != len(self.envs) or ("reward_scale" in state) != (self._reward_scale is not None):
            raise CheckpointError("the checkpoint's env state does not match this spec's env")
        for env, env_state in zip(self.envs, state["envs"]):
            load_gym_env_state(env, env_state)
        for name in self._state_attrs:
            getattr(self, name)[...] = state[name].numpy()
        if self._reward_scale is not None:
            self._reward_scale.load_state_dict(state["reward_scale"])
