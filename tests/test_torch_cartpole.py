"""The torch CartPole against gymnasium's, side by side from the same states and actions."""

import gymnasium as gym
import numpy as np
import torch
from torchrl.envs.utils import check_env_specs

from pgtorchrl.envs.custom.cartpole import TorchCartPoleEnv


def test_same_dynamics_rewards_terminations_and_truncations_as_gymnasium():
    n, steps = 16, 600
    env = TorchCartPoleEnv(n, dtype=torch.float64)
    env.set_seed(0)
    env.reset()
    refs = [gym.make("CartPole-v1") for _ in range(n)]
    for i, ref in enumerate(refs):
        ref.reset(seed=i)
        ref.unwrapped.state = env.state[i].numpy().copy()
    rng = np.random.default_rng(0)
    compared = terminations = truncations = 0
    alive = np.ones(n, dtype=bool)
    for _ in range(steps):
        # a mostly-balancing policy, so that some episodes reach the 500-step limit
        pushes = (env.state[:, 2] + 0.5 * env.state[:, 3] > 0).numpy().astype(int)
        pushes = np.where(rng.random(n) < 0.1, 1 - pushes, pushes)
        out = env.step_tensors(torch.nn.functional.one_hot(torch.as_tensor(pushes), 2))
        for i, ref in enumerate(refs):
            if not alive[i]:
                continue
            obs, reward, terminated, truncated, _ = ref.step(int(pushes[i]))
            np.testing.assert_allclose(ref.unwrapped.state, out["observation"][i].numpy(), rtol=0, atol=1e-9)
            assert reward == out["reward"][i].item()
            assert terminated == bool(out["terminated"][i]) and truncated == bool(out["truncated"][i])
            compared += 1
            terminations += terminated
            truncations += truncated
            if terminated or truncated:
                alive[i] = False
        if not alive.any():
            break
    assert compared > 2000 and terminations > 0 and truncations > 0


def test_is_a_valid_torchrl_env_with_partial_resets():
    env = TorchCartPoleEnv(4)
    check_env_specs(env)
    env.set_seed(1)
    rollout = env.rollout(700, break_when_any_done=False)  # TorchRL resets finished envs itself
    assert rollout["next", "done"].sum() >= 4
    starts = rollout["step_count"] == 0
    assert (rollout["observation"][starts.squeeze(-1)].abs() <= 0.05).all()
    assert rollout["step_count"].max() <= 500


def test_seed_makes_resets_reproducible():
    a, b = TorchCartPoleEnv(3), TorchCartPoleEnv(3)
    a.set_seed(7)
    b.set_seed(7)
    torch.testing.assert_close(a.reset()["observation"], b.reset()["observation"])
