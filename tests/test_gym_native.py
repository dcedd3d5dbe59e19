"""`gym_native`: gymnasium envs behind the tensor fast path give the transitions gymnasium gives,
and the episodes TorchRL's GymWrapper gives."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torchrl.collectors import Collector
from torchrl.envs import ExplorationType
from torchrl.envs.utils import check_env_specs

from pgtorchrl.collectors.rollout import MASK_KEY, NativeCollector, first_episodes
from pgtorchrl.envs.gym import make_gym_env
from pgtorchrl.envs.gym_native import GymNativeEnv
from pgtorchrl.modules.models import make_actor


def actor_for(env, seed=0):
    torch.manual_seed(seed)
    return make_actor(env.observation_spec["observation"], env.action_spec, hidden_sizes=[16])


def test_collected_batches_replay_step_for_step_in_gymnasium_resets_and_time_limit_included():
    n, limit, seed = 4, 30, 5
    env = GymNativeEnv("CartPole-v1", n, max_episode_steps=limit)
    env.set_seed(seed)
    batches = list(NativeCollector(env, actor_for(env), frames_per_batch=n * 40, total_frames=n * 120))
    batch = torch.cat(batches, dim=1)  # [n, 120]: episodes run on across batches
    refs = [gym.make("CartPole-v1", max_episode_steps=limit) for _ in range(n)]
    seen = {"terminated": 0, "truncated": 0}
    for i, ref in enumerate(refs):
        ref.reset(seed=seed + i)  # set_seed, then the collector's first reset
        obs, _ = ref.reset()
        steps = episode_return = 0
        for t in range(batch.shape[1]):
            row = batch[i, t]
            np.testing.assert_array_equal(row["observation"].numpy(), obs)
            assert row["step_count"].item() == steps
            obs, reward, terminated, truncated, _ = ref.step(int(row["action"].argmax()))
            steps, episode_return = steps + 1, episode_return + reward
            np.testing.assert_array_equal(row["next", "observation"].numpy(), obs)
            assert row["next", "reward"].item() == reward
            assert (row["next", "terminated"].item(), row["next", "truncated"].item()) == (terminated, truncated)
            assert row["next", "done"].item() == (terminated or truncated)
            assert (row["next", "step_count"].item(), row["next", "episode_reward"].item()) == (steps, episode_return)
            if terminated or truncated:
                seen["terminated" if terminated else "truncated"] += 1
                obs, _ = ref.reset()
                steps = episode_return = 0
    assert seen["terminated"] > 0 and seen["truncated"] > 0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/SpaceInvaders-v1"])  # a flat vector; bool images (a CNN)
def test_the_same_episodes_as_torchrl_gymwrapper_from_the_same_seed(env_id):
    native, wrapped = GymNativeEnv(env_id, 5), make_gym_env(env_id, 5)
    actor = actor_for(native)
    native.set_seed(3)
    wrapped.set_seed(3)
    a = first_episodes(native, actor, exploration=ExplorationType.DETERMINISTIC)  # the tensor fast path
    b = first_episodes(wrapped, actor, exploration=ExplorationType.DETERMINISTIC)  # TorchRL's step path
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    assert torch.equal(a[MASK_KEY], b[MASK_KEY])
    real = a[MASK_KEY]
    for key in a.keys(True, True):
        if key != "action_log_prob":
            assert a[key].dtype == b[key].dtype and torch.equal(a[key][real], b[key][real]), key
    torch.testing.assert_close(a["action_log_prob"][real], b["action_log_prob"][real])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "MinAtar/Breakout-v1"])
def test_is_a_torchrl_env_that_torchrls_collector_drives(env_id):
    env = GymNativeEnv(env_id, 3)
    check_env_specs(env)
    env.set_seed(0)
    collector = Collector(env, actor_for(env), frames_per_batch=3 * 250, total_frames=3 * 250)
    batch = next(iter(collector))
    collector.shutdown()
    assert batch["next", "done"].any()  # episodes ended and TorchRL reset those envs
    starts = batch["step_count"].squeeze(-1) == 0
    assert (batch["episode_reward"][starts] == 0).all() and starts[:, 1:].any()


def test_a_finished_env_is_not_stepped_again_until_it_is_reset():
    env = GymNativeEnv("CartPole-v1", 2, max_episode_steps=3)
    env.reset_tensors(None)
    push = torch.tensor([[0, 1], [0, 1]])
    for _ in range(3):
        out = env.step_tensors(push)
    frozen = env.step_tensors(push)
    assert frozen["truncated"].all() and (frozen["reward"] == 0).all()
    assert torch.equal(frozen["observation"], out["observation"]) and (frozen["step_count"] == 3).all()
    again = env.reset_tensors(torch.tensor([True, False]))
    assert again["step_count"].flatten().tolist() == [0, 3] and again["done"].flatten().tolist() == [False, True]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MinAtar/Breakout-v1"])  # MinAtar: its game's inner state
def test_a_checkpointed_env_continues_exactly(env_id):
    env, copy = GymNativeEnv(env_id, 3), GymNativeEnv(env_id, 3)
    env.set_seed(1)
    env.reset_tensors(None)
    n_actions = env.action_spec.shape[-1]
    pushes = torch.eye(n_actions, dtype=torch.long)[torch.randint(0, n_actions, (60, 3))]
    for push in pushes[:30]:
        out = env.step_tensors(push)
        env.reset_tensors(out["done"].flatten())
    copy.load_state_tensors(env.state_tensors())
    for push in pushes[30:]:
        a, b = env.step_tensors(push), copy.step_tensors(push)
        assert all(torch.equal(a[k], b[k]) for k in a)
        env.reset_tensors(a["done"].flatten())
        copy.reset_tensors(b["done"].flatten())


def test_spaces_it_cannot_carry_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match=r"gym_native' needs a flat or image .* Blackjack-v1 .*use env 'gym'"):
        GymNativeEnv("Blackjack-v1", 2)
    with pytest.raises(ValueError, match=r"normalize_observations normalizes flat observations; MinAtar/Breakout-v1"):
        GymNativeEnv("MinAtar/Breakout-v1", 2, normalize_observations=True)


def test_reset_finished_resets_exactly_the_finished_envs_of_any_step_it_is_given():
    """The collector's reset after each step, which asks the flags the step saw instead of the
    tensor: on the latest step, and on an older one (decided by that step's own flags)."""
    env = GymNativeEnv("CartPole-v1", 3, max_episode_steps=4)
    env.set_seed(0)
    env.reset_tensors(None)
    push = torch.tensor([[0, 1]] * 3)
    first = env.step_tensors(push)
    after = env.reset_finished(first)  # nothing finished: the step's own tensors, less the reward
    assert "reward" not in after and all(after[k] is first[k] for k in after)
    env.reset_tensors(torch.tensor([True, False, False]))  # env 0 restarts: it is one step behind
    for _ in range(3):
        last = env.step_tensors(push)
    assert last["step_count"].flatten().tolist() == [3, 4, 4] and last["done"].flatten().tolist() == [False, True, True]
    after = env.reset_finished(last)
    assert after["step_count"].flatten().tolist() == [3, 0, 0] and not after["done"].any()
    env.reset_tensors(None)
    latest = env.step_tensors(push)
    assert not latest["done"].any()
    again = env.reset_finished(last)  # an older step: its finished envs 1 and 2 start over
    assert again["step_count"].flatten().tolist() == [1, 0, 0]
