"""Reward-to-go and GAE against naive loops and hand-computed cases."""

import pytest
import torch

from pgtorchrl.objectives.value.functional import check_time_shapes, generalized_advantage, reward_to_go


def col(*values, dtype=torch.float64):
    """One env's time series as a [1, T, 1] tensor."""
    return torch.tensor(values, dtype=dtype).view(1, -1, 1)


def flags(*values):
    return torch.tensor(values, dtype=torch.bool).view(1, -1, 1)


# --- naive references: per env, per episode, plain Python ------------------------------------
def naive_reward_to_go(reward, done, terminated, next_value, gamma):
    B, T, _ = reward.shape
    out = torch.zeros_like(reward)
    for b in range(B):
        for t in range(T):
            g, discount = 0.0, 1.0
            for k in range(t, T):
                g += discount * reward[b, k, 0].item()
                if terminated[b, k, 0]:
                    break
                if done[b, k, 0] or k == T - 1:  # truncation or batch end: bootstrap with V(s_{k+1})
                    g += discount * gamma * next_value[b, k, 0].item()
                    break
                discount *= gamma
            out[b, t, 0] = g
    return out


def naive_gae(reward, value, next_value, done, terminated, gamma, lmbda):
    B, T, _ = reward.shape
    out = torch.zeros_like(reward)
    for b in range(B):
        for t in range(T):
            a, weight = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[b, k, 0] else next_value[b, k, 0].item()
                delta = reward[b, k, 0].item() + gamma * bootstrap - value[b, k, 0].item()
                a += weight * delta
                if done[b, k, 0]:
                    break
                weight *= gamma * lmbda
            out[b, t, 0] = a
    return out


def random_batch(seed, B=4, T=23):
    g = torch.Generator().manual_seed(seed)
    reward = torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    value = torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    next_value = torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    ends = torch.rand(B, T, 1, generator=g) < 0.2
    terminated = ends & (torch.rand(B, T, 1, generator=g) < 0.5)
    return reward, value, next_value, ends, terminated


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_reward_to_go_matches_naive_loop(seed, gamma):
    reward, _, next_value, done, terminated = random_batch(seed)
    got = reward_to_go(reward, done, terminated, next_value, gamma)
    torch.testing.assert_close(got, naive_reward_to_go(reward, done, terminated, next_value, gamma))


def test_long_rows_match_the_naive_loop_and_an_episode_end_isolates_what_follows():
    """300-step rows take 9 rounds of the doubling scan; float32 stays within float32 tolerance of
    the float64 loop, and a NaN after a termination never reaches the episode before it."""
    g = torch.Generator().manual_seed(1)
    reward, next_value = (
        torch.randn(2, 300, 1, generator=g, dtype=torch.float64),
        torch.randn(2, 300, 1, generator=g, dtype=torch.float64),
    )
    done = torch.rand(2, 300, 1, generator=g) < 0.01
    terminated = done.clone()
    expected = naive_reward_to_go(reward, done, terminated, next_value, 0.99)
    torch.testing.assert_close(
        reward_to_go(reward.float(), done, terminated, next_value.float(), 0.99), expected.float()
    )
    end = int(terminated[0, :, 0].nonzero()[0])
    reward[0, end + 1 :] = float("nan")
    got = reward_to_go(reward, done, terminated, next_value, 0.99)
    assert got[0, : end + 1].isfinite().all() and got[0, end + 1 :].isnan().all()
    torch.testing.assert_close(got[0, : end + 1], expected[0, : end + 1])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma,lmbda", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.3)])
def test_gae_matches_naive_loop(seed, gamma, lmbda):
    reward, value, next_value, done, terminated = random_batch(seed)
    got = generalized_advantage(reward, value, next_value, done, terminated, gamma, lmbda)
    torch.testing.assert_close(got, naive_gae(reward, value, next_value, done, terminated, gamma, lmbda))


def test_reward_to_go_termination_by_hand():
    # r = 1, 2, 3 then a true termination: G = [1 + .5*2 + .25*3, 2 + .5*3, 3] = [2.75, 3.5, 3]
    got = reward_to_go(col(1, 2, 3), flags(0, 0, 1), flags(0, 0, 1), col(10, 10, 10), 0.5)
    assert got.flatten().tolist() == [2.75, 3.5, 3.0]


def test_reward_to_go_truncation_bootstraps_with_next_value():
    # time-limit cut after step 1 (V(s_2) = 8); a new episode of one step then terminates.
    got = reward_to_go(col(1, 1, 5), flags(0, 1, 1), flags(0, 0, 1), col(0, 8, 100), 0.5)
    # G_1 = 1 + .5*8 = 5, G_0 = 1 + .5*5 = 3.5; G_2 = 5 (terminal: the 100 is ignored)
    assert got.flatten().tolist() == [3.5, 5.0, 5.0]


def test_reward_to_go_batch_end_fragment_bootstraps():
    # the batch ends mid-episode: the last step is bootstrapped with V(s_T) = 4
    got = reward_to_go(col(1, 1), flags(0, 0), flags(0, 0), col(0, 4), 0.5)
    assert got.flatten().tolist() == [1 + 0.5 * (1 + 0.5 * 4), 1 + 0.5 * 4]


def test_reward_to_go_without_critic_is_the_plain_discounted_sum():
    got = reward_to_go(col(1, 1, 1), flags(0, 0, 0), flags(0, 0, 0), None, 1.0)
    assert got.flatten().tolist() == [3.0, 2.0, 1.0]


def test_gae_hand_computed_with_truncation_and_termination():
    gamma, lmbda = 0.5, 0.5
    reward, value = col(1, 1, 1), col(2, 2, 2)
    next_value = col(2, 6, 9)
    done, terminated = flags(0, 1, 1), flags(0, 0, 1)
    # deltas: t0 = 1 + .5*2 - 2 = 0; t1 (truncated: bootstrap 6) = 1 + 3 - 2 = 2; t2 (terminal) = 1 - 2 = -1
    # A_1 = 2 (episode cut), A_0 = 0 + .25 * 2 = 0.5, A_2 = -1
    got = generalized_advantage(reward, value, next_value, done, terminated, gamma, lmbda)
    assert got.flatten().tolist() == [0.5, 2.0, -1.0]


def test_gae_lambda_one_is_monte_carlo_advantage_and_zero_is_td_error():
    reward, value, next_value, done, terminated = random_batch(7)
    # as in real batches, V(s_{t+1}) is the next step's V(s) inside an episode
    next_value[:, :-1] = torch.where(done[:, :-1], next_value[:, :-1], value[:, 1:])
    mc = generalized_advantage(reward, value, next_value, done, terminated, 0.9, 1.0)
    torch.testing.assert_close(mc, reward_to_go(reward, done, terminated, next_value, 0.9) - value)
    td = generalized_advantage(reward, value, next_value, done, terminated, 0.9, 0.0)
    torch.testing.assert_close(td, reward + 0.9 * (~terminated) * next_value - value)


def test_envs_are_independent():
    reward, value, next_value, done, terminated = random_batch(3, B=3)
    full = generalized_advantage(reward, value, next_value, done, terminated, 0.99, 0.95)
    for b in range(3):
        one = generalized_advantage(
            reward[b : b + 1],
            value[b : b + 1],
            next_value[b : b + 1],
            done[b : b + 1],
            terminated[b : b + 1],
            0.99,
            0.95,
        )
        torch.testing.assert_close(full[b : b + 1], one)


def test_shape_check_names_the_culprit():
    with pytest.raises(ValueError, match=r"shape mismatch: reward is \(2, 5, 1\) but \{'done': \(2, 4, 1\)\}"):
        check_time_shapes(reward=torch.zeros(2, 5, 1), done=torch.zeros(2, 4, 1))
    with pytest.raises(ValueError, match="add a trailing feature dim"):
        reward_to_go(torch.zeros(5), torch.zeros(5, dtype=torch.bool), torch.zeros(5, dtype=torch.bool), None, 0.9)
