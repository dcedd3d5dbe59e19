"""``normalize_reward`` (:class:`~pgtorchrl.envs.normalize_reward.NormalizeReward`): env ``gym``'s
reward normalization by the running scale of the discounted return, against gymnasium's
``NormalizeReward`` on the same rewards; its state through ``state_dict``; the task's return kept."""

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from pgtorchrl.envs.gym import make_gym_env
from pgtorchrl.envs.normalize_reward import NormalizeReward


def actions(env, steps: int, seed: int = 0) -> torch.Tensor:
    """A fixed sequence of random actions for ``env``'s batch (the same for every env built alike)."""
    torch.manual_seed(seed)
    return torch.stack([env.action_spec.rand() for _ in range(steps)])


def rollout(env, acts: torch.Tensor, seed: int = 3):
    env.set_seed(seed)
    td = env.reset()
    out = []
    for a in acts:
        td["action"] = a
        step, td = env.step_and_maybe_reset(td)
        out.append(step["next"].clone())
    return torch.stack(out)


class Replay(gym.Env):
    """An env that replays given rewards and termination flags (for gymnasium's wrapper)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Discrete(1)

    def __init__(self, rewards, terminated):
        self.rewards, self.terminated, self.t = rewards, terminated, 0

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, np.float32), {}

    def step(self, action):
        r, term = float(self.rewards[self.t]), bool(self.terminated[self.t])
        self.t += 1
        return np.zeros(1, np.float32), r, term, False, {}


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])  # episodes that terminate / that truncate
def test_scaled_rewards_are_gymnasiums_normalize_reward(env_id):
    plain = make_gym_env(env_id, 1)
    acts = actions(plain, 450)
    raw = rollout(plain, acts)
    scaled = rollout(make_gym_env(env_id, 1, transforms=[NormalizeReward(gamma=0.9)]), acts)
    rewards, terminated = raw["reward"].flatten().numpy(), raw["terminated"].flatten().numpy()
    assert (raw["done"].sum() >= 2) and not torch.equal(scaled["reward"], raw["reward"])
    reference = gym.wrappers.NormalizeReward(Replay(rewards, terminated), gamma=0.9)
    reference.reset()
    expected = np.array([reference.step(0)[1] for _ in rewards])
    np.testing.assert_allclose(scaled["reward"].flatten().numpy(), expected, rtol=1e-5, atol=1e-6)
    # the task's own return is read before the transform: episode_reward sums the raw rewards
    torch.testing.assert_close(scaled["episode_reward"], raw["episode_reward"])


def test_each_env_of_a_batch_keeps_its_own_return_and_the_clip_bounds_the_reward():
    env = make_gym_env("CartPole-v1", 3, transforms=[NormalizeReward(gamma=0.99, clip=0.3)])
    batch = rollout(env, actions(env, 100))
    assert batch["reward"].max() == pytest.approx(0.3) and (batch["reward"] < 0.3).any()
    transform = env.transform[-1]
    assert transform._scale.returns.shape == (3, 1)
    assert transform._scale.stats.count == pytest.approx(300, abs=1e-3)  # every env's return, every step


def test_state_travels_through_state_dict_and_freeze_stops_it():
    """A checkpoint's copy (``torch.load(weights_only=True)``) continues with the same rewards."""
    make = lambda: make_gym_env("Pendulum-v1", 2, transforms=[NormalizeReward(gamma=0.9, clip=10.0)])  # noqa: E731
    env, acts = make(), actions(make(), 60)
    rollout(env, acts[:30])
    buffer = io.BytesIO()
    torch.save(env.transform[-1].state_dict(), buffer)
    buffer.seek(0)
    copy = make()
    copy.transform[-1].load_state_dict(torch.load(buffer, weights_only=True))
    fresh = make()
    # the same env state in both (reseeded alike); the rewards differ only by what was loaded
    a, b, c = (rollout(e, acts[30:], seed=5)["reward"] for e in (env, copy, fresh))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)

    transform = env.transform[-1]
    transform.freeze()
    count = transform._scale.stats.count
    rollout(env, acts)
    assert transform._scale.stats.count == count
