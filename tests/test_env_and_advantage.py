"""The gymnasium env factory and the advantage modules on real collected batches."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.modules import ValueOperator

from pgtorchrl.envs.gym import make_gym_env
from pgtorchrl.objectives.value.advantages import GAE, RewardToGo
from pgtorchrl.objectives.value.functional import generalized_advantage, reward_to_go
from pgtorchrl.trainers.evaluation import episode_stats, evaluate


class Alternate(nn.Module):
    """Pushes left, right, left, ...: keeps CartPole up for the few steps of these tests."""

    def forward(self, observation):
        step = getattr(self, "t", 0)
        self.t = step + 1
        action = torch.zeros(*observation.shape[:-1], 2, dtype=torch.int64)
        action[..., step % 2] = 1
        return action


def alternating_policy():
    return TensorDictModule(Alternate(), in_keys=["observation"], out_keys=["action"])


def linear_critic():
    critic = ValueOperator(nn.Linear(4, 1), in_keys=["observation"])
    with torch.no_grad():
        critic.module.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
        critic.module.bias.fill_(10.0)
    return critic


@pytest.fixture
def truncated_batch():
    """Two CartPoles with a 5-step time limit, 8 steps collected: every env truncates at t=4."""
    env = make_gym_env("CartPole-v1", num_envs=2, max_episode_steps=5)
    env.set_seed(0)
    collector = Collector(env, alternating_policy(), frames_per_batch=16, total_frames=16)
    batch = next(iter(collector))
    collector.shutdown()
    return batch


def test_truncation_keeps_the_final_observation(truncated_batch):
    b = truncated_batch
    assert b.batch_size == (2, 8)
    truncated, terminated = b["next", "truncated"][..., 0], b["next", "terminated"][..., 0]
    assert truncated[:, 4].all() and not terminated.any()
    # the step after the cut starts a fresh episode...
    assert (b["step_count"][:, 5, 0] == 0).all()
    # ...while ("next", "observation") of the cut step is the real s_T: replay it in gymnasium
    for env_index in range(2):
        plain = gym.make("CartPole-v1").unwrapped
        plain.reset()
        plain.state = b["observation"][env_index, 0].double().numpy()
        for t in range(5):
            obs, *_ = plain.step(int(b["action"][env_index, t].argmax()))
        np.testing.assert_allclose(obs, b["next", "observation"][env_index, 4].numpy(), rtol=1e-6)
        assert not torch.allclose(b["next", "observation"][env_index, 4], b["observation"][env_index, 5])


def test_reward_to_go_module_bootstraps_the_truncation_with_the_critic(truncated_batch):
    critic = linear_critic()
    batch = RewardToGo(critic, gamma=0.9)(truncated_batch)
    v_final = critic(truncated_batch["next"][:, 4].clone())["state_value"]
    # G_4 = r_4 + gamma * V(s_5), with s_5 the truncated episode's last observation
    torch.testing.assert_close(batch["value_target"][:, 4], 1 + 0.9 * v_final)
    torch.testing.assert_close(batch["advantage"], batch["value_target"] - batch["state_value"])
    # the batch end (t=7) is a fragment: bootstrapped with V(s_8)
    v_end = critic(truncated_batch["next"][:, 7].clone())["state_value"]
    torch.testing.assert_close(batch["value_target"][:, 7], 1 + 0.9 * v_end)


def test_module_equals_the_pure_function_on_a_collected_batch(truncated_batch):
    critic = linear_critic()
    batch = GAE(critic, gamma=0.99, lmbda=0.9)(truncated_batch)
    with torch.no_grad():
        value = critic(truncated_batch.clone())["state_value"]
        next_value = critic(truncated_batch["next"].clone())["state_value"]
    expected = generalized_advantage(
        batch["next", "reward"], value, next_value, batch["next", "done"], batch["next", "terminated"], 0.99, 0.9
    )
    torch.testing.assert_close(batch["advantage"], expected)
    torch.testing.assert_close(batch["value_target"], expected + value)


def test_critic_free_reward_to_go_and_normalization():
    td = TensorDict(
        {
            "next": {
                "reward": torch.ones(1, 4, 1),
                "done": torch.tensor([[[0], [1], [0], [1]]]).bool(),
                "terminated": torch.tensor([[[0], [1], [0], [1]]]).bool(),
            }
        },
        [1, 4],
    )
    out = RewardToGo(gamma=1.0, truncation="terminal")(td.clone())
    assert out["advantage"].flatten().tolist() == [2.0, 1.0, 2.0, 1.0]
    assert out["value_target"].flatten().tolist() == [2.0, 1.0, 2.0, 1.0]
    normalized = RewardToGo(gamma=1.0, normalize=True, truncation="terminal")(td.clone())["advantage"]
    torch.testing.assert_close(normalized.mean(), torch.tensor(0.0))
    torch.testing.assert_close(normalized.std(unbiased=False), torch.tensor(1.0))
    expected = reward_to_go(td["next", "reward"], td["next", "done"], td["next", "terminated"], None, 1.0)
    torch.testing.assert_close(out["advantage"], expected)


def test_gae_requires_a_critic_and_valid_hyperparameters():
    with pytest.raises(ValueError, match="GAE: 'gae' needs a critic"):
        GAE(None)
    with pytest.raises(ValueError, match="GAE: lmbda: Input should be less than or equal to 1, got 1.5"):
        GAE(linear_critic(), lmbda=1.5)
    with pytest.raises(ValueError, match="'reward_key' is not a key of RewardToGo"):
        RewardToGo(linear_critic()).set_keys(reward_key="r")
    with pytest.raises(ValueError, match="RewardToGo: truncation: 'bootstrap' needs a critic to value the cut state"):
        RewardToGo()
    action_critic = ValueOperator(nn.Linear(6, 1), in_keys=["observation", "action"])
    with pytest.raises(ValueError, match="baseline may depend on the state only"):
        RewardToGo(action_critic)


def test_episode_stats_and_deterministic_evaluation(truncated_batch):
    stats = episode_stats(truncated_batch)
    assert stats["rollout/episode_return"] == 5.0 and stats["rollout/episode_length"] == 5.0
    env = make_gym_env("CartPole-v1", num_envs=3, max_episode_steps=7)
    env.set_seed(0)
    returns = evaluate(env, alternating_policy())
    assert returns.tolist() == [7.0, 7.0, 7.0]  # one full (time-limited) episode per env


def test_truncation_modes_on_a_whole_episode_batch():
    """Row 0 terminates, row 1 is cut by a time limit: 'drop' removes row 1 from the mask,
    'terminal' ends its return at the cut, 'bootstrap' continues it with V(s_T)."""
    done = torch.tensor([[0, 1, 0], [0, 0, 1]]).bool().unsqueeze(-1)
    terminated = torch.tensor([[0, 1, 0], [0, 0, 0]]).bool().unsqueeze(-1)
    td = TensorDict(
        {
            "observation": torch.zeros(2, 3, 4),
            "next": {
                "reward": torch.ones(2, 3, 1),
                "done": done,
                "terminated": terminated,
                "observation": torch.ones(2, 3, 4),
            },
            "collector": {"mask": torch.tensor([[1, 1, 0], [1, 1, 1]]).bool()},
        },
        [2, 3],
    )
    dropped = RewardToGo(gamma=1.0, truncation="drop")(td.clone())
    assert dropped["collector", "mask"].tolist() == [[True, True, False], [False, False, False]]
    assert dropped["advantage"][1].abs().sum() == 0 and dropped["advantage"][0, :2].flatten().tolist() == [2.0, 1.0]
    terminal = RewardToGo(gamma=1.0, truncation="terminal")(td.clone())
    assert terminal["advantage"][1].flatten().tolist() == [3.0, 2.0, 1.0]
    critic = linear_critic()  # V(s') = 10 + sum(1*[1, 2, 3, 4]) = 20 at the cut's next observation
    bootstrapped = RewardToGo(critic, gamma=1.0, baseline="none")(td.clone())
    assert bootstrapped["value_target"][1].flatten().tolist() == [23.0, 22.0, 21.0]
