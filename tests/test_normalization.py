"""``gym_native``'s observation normalization: the references' running statistic (gymnasium's
``NormalizeObservation``), and its statistics as part of the trained policy (checkpoints,
evaluation, ``load_actor``)."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import ExplorationType, set_exploration_type

from pgtorchrl.envs.gym_native import GymNativeEnv
from pgtorchrl.envs.normalization import RunningRewardScale

ROOT = Path(__file__).resolve().parents[1]
VPG = ROOT / "pipelines" / "vpg_cartpole.yaml"


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Hopper-v5"])
def test_normalized_observations_and_rewards_are_gymnasiums_normalize_wrappers(env_id):
    reference = gym.wrappers.NormalizeReward(gym.wrappers.NormalizeObservation(gym.make(env_id)), gamma=0.9)
    env = GymNativeEnv(env_id, 1, normalize_observations=True, normalize_rewards=True, reward_gamma=0.9)
    env.set_seed(3)
    reference.unwrapped.reset(seed=3)  # set_seed resets once with the seed; reset_tensors resets again
    expected, _ = reference.reset()
    got = env.reset_tensors(None)["observation"][0].numpy()
    rng, resets, worst, worst_reward = np.random.default_rng(0), 0, abs(got - expected).max(), 0.0
    for _ in range(400):
        action = (
            reference.action_space.sample() if env_id == "CartPole-v1" else rng.uniform(-1, 1, 3).astype(np.float32)
        )
        expected, reward, terminated, truncated, _ = reference.step(action)
        native = (
            torch.nn.functional.one_hot(torch.tensor([int(action)]), 2)
            if env_id == "CartPole-v1"
            else torch.tensor(action)[None]
        )
        step = env.step_tensors(native)
        got = step["observation"][0].numpy()
        worst = max(worst, abs(got - expected).max())
        worst_reward = max(worst_reward, abs(step["reward"].item() - reward) / max(1.0, abs(reward)))
        if terminated or truncated:
            resets += 1
            expected, _ = reference.reset()
            got = env.reset_tensors(torch.tensor([True]))["observation"][0].numpy()
            worst = max(worst, abs(got - expected).max())
    assert resets >= 2  # the statistics also took in the reset observations
    assert worst < 1e-4  # float32 observations against gymnasium's float64
    assert worst_reward < 1e-5
    assert env.normalizers[0].count > 400 and env._reward_scale.stats.count > 400


def test_clipping_and_freezing():
    env = GymNativeEnv("CartPole-v1", 4, normalize_observations=True, clip_observations=0.5)
    env.set_seed(0)
    obs = env.rollout(30)["observation"]
    assert obs.abs().max() <= 0.5 and (obs.abs() == 0.5).any()
    norm = env.normalizers[0]
    norm.freeze()
    count = norm.count
    env.rollout(10)
    assert norm.count == count
    with pytest.raises(ValueError, match="set normalize_observations: true"):
        GymNativeEnv("CartPole-v1", 1, clip_observations=1.0)
    with pytest.raises(ValueError, match="set normalize_rewards: true"):
        GymNativeEnv("CartPole-v1", 1, clip_rewards=1.0)


def test_scaled_rewards_leave_the_task_return_and_are_clipped():
    env = GymNativeEnv("CartPole-v1", 2, normalize_rewards=True, clip_rewards=0.5)
    env.set_seed(0)
    batch = env.rollout(60, break_when_any_done=False)
    reward, total = batch["next", "reward"], batch["next", "episode_reward"]
    assert reward.max() <= 0.5 and (reward != 1.0).all()  # CartPole's reward is 1: the learner's is scaled
    done = batch["next", "done"]
    assert torch.equal(total[done], batch["next", "step_count"][done].float())  # the task's return: 1 per step


def test_native_statistics_travel_with_the_policy_to_checkpoints_eval_and_load_actor(store):
    from pgtorchrl.experiments.loading import evaluate_run, latest_checkpoint, load_actor
    from pgtorchrl.pipeline.build import build_pipeline, eval_env
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.evaluation import evaluate
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(
        VPG,
        [
            "train.total_frames=2048",
            "eval.every_frames=1024",
            "eval.episodes=3",
            "eval.target_return=null",
            "env.normalize_observations=true",
            "env.clip_observations=5.0",
        ],
    )
    p = build_pipeline(spec)
    result = train(spec, pipeline=p)
    norm = p.env.normalizers[0]
    assert norm.count > 2048  # every observation of training, the resets' included

    checkpoint = latest_checkpoint(result.run_id)  # the end state's checkpoint holds the statistics
    assert torch.equal(checkpoint["env_transforms"]["0"]["mean"], torch.from_numpy(norm.mean))

    raw = torch.randn(16, 4) * 3
    loaded = load_actor(result.run_id)  # acts on raw observations as the trained policy did through its env
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        expected = p.actor(TensorDict({"observation": torch.from_numpy(norm(raw.numpy()))}, [16]))
        got = loaded(TensorDict({"observation": raw.clone()}, [16]))
    torch.testing.assert_close(got["logits"], expected["logits"])
    assert torch.equal(got["action"], expected["action"])

    reference = eval_env(spec, 3)
    p.sync_eval_env(reference)
    assert reference.normalizers[0].frozen and reference.normalizers[0].count == norm.count
    assert torch.equal(evaluate_run(result.run_id, episodes=3), evaluate(reference, p.actor))


@pytest.mark.parametrize("clip", [None, 10.0, 0.3])
def test_one_envs_reward_scale_on_floats_is_the_array_path_bit_for_bit(clip):
    """RunningRewardScale's path for one env (Python floats) against its array path: the same
    scaled rewards, returns and statistics at every step, through terminations and a freeze."""
    floats, arrays = RunningRewardScale(1, 0.99, clip=clip), RunningRewardScale(1, 0.99, clip=clip)
    rng = np.random.default_rng(0)
    for t in range(600):
        if t == 500:
            floats.stats.freeze()
            arrays.stats.freeze()
        reward = (rng.standard_normal((1, 1)) * 10 ** rng.uniform(-3, 2)).astype(np.float32)
        terminated = rng.random((1, 1)) < 0.05
        a, b = floats(reward, terminated, [0]), arrays._rows(reward, terminated, [0])
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a, b)
        sa, sb = floats.state_dict(), arrays.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert floats.stats.count == arrays.stats.count


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_envs_statistics_are_numpys_mean_and_var_bit_for_bit(dtype):
    """``RunningMeanStd.update`` of several rows sums the mean once (``_mean_and_var``): numpy's
    ``x.mean(0)`` and ``x.var(0)``, the same bits and dtypes, for any batch size."""
    from pgtorchrl.envs.normalization import _mean_and_var

    rng = np.random.default_rng(0)
    for rows, size in [(2, 17), (3, 17), (7, 1), (8, 17), (8, 1), (13, 3), (64, 11)]:
        for _ in range(20):
            x = (rng.standard_normal((rows, size)) * rng.uniform(0.1, 100)).astype(dtype)
            mean, var = _mean_and_var(x)
            for got, expected in ((mean, x.mean(0)), (var, x.var(0))):
                assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
