"""Atari through ale-py (env ``atari``, pgtorchrl.envs.atari): DQN's preprocessing, the learner's
lives and clipped rewards beside the game's own score, FIRE after a lost life, the advantage
reading the end of each life, and a one-line error without the extra."""

from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from pgtorchrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
BREAKOUT = ROOT / "pipelines" / "ppo_atari_breakout.yaml"


@pytest.fixture(autouse=True)
def _needs_the_extra():
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")


def _play(env, actions: torch.Tensor):
    """Steps ``env`` through ``actions`` ([steps, envs] indices), resetting finished games."""
    from torchrl.envs.utils import step_mdp

    td = env.reset()
    steps = []
    n = env.action_spec.shape[-1]
    for action in actions:
        td["action"] = torch.nn.functional.one_hot(action, n)
        td = env.step(td)
        steps.append(td.clone())
        td = step_mdp(td)
        if td["done"].any():
            td = env.reset(td.exclude("episode_reward", "step_count").set("_reset", td["done"].clone()))
    return torch.stack(steps, 1)  # [envs, steps]


def test_frames_stay_uint8_and_the_learner_sees_signs_and_lives_while_the_logs_see_the_game():
    """The same seed and actions with and without the learner's view: ``reward`` is the sign of
    the game's reward, ``episode_reward`` (the rollout/ and eval/ returns) the game's score,
    ``end-of-life`` marks each lost life and ``done`` only the game's end."""
    from pgtorchrl.envs.atari import make_atari_env

    generator = torch.Generator().manual_seed(0)
    actions = torch.randint(0, 6, (1000, 2), generator=generator)
    game_id = "SpaceInvadersNoFrameskip-v4"  # random play scores 5 to 30 an alien, and loses its 3 lives
    learner_env = make_atari_env(game_id, num_envs=2)
    game_env = make_atari_env(game_id, num_envs=2, episodic_life=False, clip_rewards=False)
    runs = []
    for env in (learner_env, game_env):
        env.set_seed(3)
        runs.append(_play(env, actions))
    learner, game = runs
    assert learner["observation"].dtype == torch.uint8 and learner["observation"].shape == (2, 1000, 4, 84, 84)
    assert torch.equal(learner["next", "observation"], game["next", "observation"])  # the same games
    raw = game["next", "reward"]
    assert raw.max() > 1
    assert torch.equal(learner["next", "reward"], raw.sign())
    assert torch.equal(learner["next", "episode_reward"], game["next", "episode_reward"])
    done = learner["next", "done"].squeeze(-1)
    assert done.any() and torch.equal(learner["next", "lives"][done], torch.zeros(int(done.sum()), dtype=torch.long))
    lost = learner["next", "lives"] < learner["lives"]
    eol = learner["next", "end-of-life"].squeeze(-1)
    assert torch.equal(eol, lost | done) and (eol & ~done).sum() >= 2 * done.sum()  # 3 lives a game
    assert "end-of-life" not in game["next"].keys()


def test_fire_reset_puts_the_ball_back_in_play_after_each_lost_life():
    """A policy that never presses FIRE: with fire_reset, Breakout's games still end (the ball is
    launched after each reset and lost life); without it, the first ball is never served."""
    from pgtorchrl.envs.atari import make_atari_env

    noop = torch.zeros(1500, 1, dtype=torch.long)
    lives = {}
    for fire_reset in (True, False):
        env = make_atari_env("BreakoutNoFrameskip-v4", num_envs=1, fire_reset=fire_reset)
        env.set_seed(0)
        lives[fire_reset] = _play(env, noop)["next", "lives"]
    assert (lives[True] == 0).any()  # a whole game lost, life by life
    assert (lives[False] == 5).all()


def test_the_advantage_does_not_bootstrap_across_a_lost_life():
    """The pipeline points the advantage at ``end-of-life``: where a life ends, the value target
    is the reward alone (GAE with the next state's value cut), though the game goes on."""
    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.pipeline.parse import load_spec

    p = build_pipeline(load_spec(BREAKOUT, ["env.num_envs=2", "collector.frames_per_batch=64"]))
    assert (p.advantage.tensor_keys.done, p.advantage.tensor_keys.terminated) == ("end-of-life", "end-of-life")
    steps = 6
    td = TensorDict(
        {
            "observation": torch.zeros(1, steps, 4, 84, 84, dtype=torch.uint8),
            "next": {
                "observation": torch.zeros(1, steps, 4, 84, 84, dtype=torch.uint8),
                "reward": torch.ones(1, steps, 1),
                "done": torch.zeros(1, steps, 1, dtype=torch.bool),
                "terminated": torch.zeros(1, steps, 1, dtype=torch.bool),
                "end-of-life": torch.tensor([[[False], [False], [True], [False], [False], [False]]]),
            },
        },
        [1, steps],
    )
    p.advantage(td)
    target = td["value_target"].squeeze(-1)[0]
    assert target[2] == pytest.approx(1.0)  # r, nothing after the lost life


def test_without_the_extra_an_atari_spec_is_one_line_naming_the_install_command(tmp_path, capsys, monkeypatch):
    import importlib.util

    from pgtorchrl.envs import ids

    real = importlib.util.find_spec
    monkeypatch.setattr(ids.importlib.util, "find_spec", lambda name: None if name == "ale_py" else real(name))
    assert main(["validate", str(BREAKOUT)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"pgtorchrl: error: {BREAKOUT}: env.env_id: env 'atari' needs ale_py: "
        "pip install -c constraints.txt -e '.[atari]'"
    ), err


def test_a_gym_id_is_not_an_atari_game(capsys):
    assert main(["validate", str(BREAKOUT), "env.env_id=CartPole-v1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "env.env_id: 'CartPole-v1' is not an Atari game of ale-py" in err and len(err.splitlines()) == 1
    assert main(["validate", str(BREAKOUT), "env.env_id=BreakoutNoFrameskp-v4"]) == 2
    assert "did you mean 'BreakoutNoFrameskip-v4'" in capsys.readouterr().err


def test_the_pong_pipeline_trains_with_its_shared_trunk_and_annealed_rate(store, capsys):
    from mlflow.tracking import MlflowClient

    path = ROOT / "pipelines" / "ppo_atari_pong.yaml"
    tiny = ["env.num_envs=2", "collector.frames_per_batch=64", "train.total_frames=128", "eval.episodes=0"]
    assert main([str(path), *tiny]) == 0
    run_id = capsys.readouterr().out.strip().split()[-1]
    lr = [m.value for m in sorted(MlflowClient(store).get_metric_history(run_id, "train/lr"), key=lambda m: m.step)]
    assert lr == [2.5e-4, 2.5e-4 * 0.5]
