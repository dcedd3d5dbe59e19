"""Atari 2600 games (the Arcade Learning Environment, ``ale-py``: the ``atari`` extra) with the
standard preprocessing of DQN (Mnih et al. 2015) as CleanRL's ``ppo_atari.py`` and
stable-baselines3's ``AtariWrapper`` apply it, as one batched TorchRL env.

Per game (gymnasium wrappers, innermost first):

- up to ``noop_max`` no-op actions after each reset, frame skip ``frame_skip`` with the maximum of
  the last two frames, ``screen_size`` x ``screen_size`` grayscale (gymnasium's
  ``AtariPreprocessing``);
- fire reset (:class:`FireReset`, games whose second action is FIRE): FIRE, then the third action,
  after each reset and after each lost life, so the ball of Breakout is always in play (CleanRL's
  ``FireResetEnv`` under its ``EpisodicLifeEnv``, which resets at each lost life, does the same);
- the last ``frame_stack`` frames stacked: observations ``[frame_stack, H, W]``, uint8 (they stay
  uint8 in the batch; the CNN scales them: :mod:`pgtorchrl.modules.encoders`).

Then TorchRL transforms, after the env's ``RewardSum`` (so ``episode_reward``, and with it the
``rollout/`` and ``eval/`` returns, is the game's own score over a whole game):

- episodic life for the learner: TorchRL's ``EndOfLifeTransform`` writes ``end-of-life`` (a life
  lost, or the game over) without ending the episode, and the pipeline has the advantage read it
  as its ``done`` and ``terminated`` (``EndOfLifeTransform.register_keys``): no value is
  bootstrapped across a lost life;
- reward clipping for the learner: ``reward`` becomes its sign (TorchRL's ``SignTransform``).

As in CleanRL, an episode cut by the ALE's frame limit (108k frames for ``NoFrameskip-v4`` ids) is
not bootstrapped (``end-of-life`` is true there).
"""

from __future__ import annotations

import gymnasium as gym
from torchrl.envs import EndOfLifeTransform, SignTransform, TransformedEnv

from pgtorchrl.envs.gym import make_gym_env

__all__ = ["FireReset", "AtariVectorEnv", "make_atari_env", "end_of_life"]

FIRE = 1  # the ALE's action index of FIRE in the games that have it


class FireReset(gym.Wrapper):
    """Presses FIRE (then the game's third action, as CleanRL's ``FireResetEnv``) after each
    reset and after each lost life, in games whose action 1 is FIRE; other games pass through."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        self.active = len(meanings) >= 3 and meanings[FIRE] == "FIRE"
        self.lives = 0

    def _fire(self, obs, info):
        reward, terminated, truncated = 0.0, False, False
        for action in (FIRE, 2):
            obs, r, terminated, truncated, info = self.env.step(action)
            reward += float(r)
            if terminated or truncated:
                break
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if self.active:
            obs, _, terminated, truncated, info = self._fire(obs, info)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if self.active and 0 < lives < self.lives and not (terminated or truncated):
            obs, extra, terminated, truncated, info = self._fire(obs, info)
            reward = float(reward) + extra
        self.lives = lives
        return obs, reward, terminated, truncated, info


class AtariVectorEnv(gym.vector.SyncVectorEnv):
    """A ``SyncVectorEnv`` of ALE games that tells each game's lives (what TorchRL's
    ``EndOfLifeTransform`` reads, through ``GymWrapper``, as ``lives``)."""

    def lives(self) -> list[int]:
        return [env.unwrapped.ale.lives() for env in self.envs]  # type: ignore[attr-defined]


def make_atari_env(
    env_id: str,
    num_envs: int = 8,
    *,
    device: str = "cpu",
    noop_max: int = 30,
    frame_skip: int = 4,
    screen_size: int = 84,
    frame_stack: int = 4,
    fire_reset: bool = True,
    episodic_life: bool = True,
    clip_rewards: bool = True,
    transforms=(),
    **make_kwargs,
) -> TransformedEnv:
    """``num_envs`` copies of the ALE game ``env_id`` (``PongNoFrameskip-v4``, or ``ALE/Pong-v5``
    with ``make_kwargs={frameskip: 1}``: the wrappers skip frames themselves) with the module's
    preprocessing, as one TorchRL env (:func:`pgtorchrl.envs.gym.make_gym_env`); ``transforms``
    come after the learner's.

    >>> import pytest; _ = pytest.importorskip("ale_py")  # the atari extra
    >>> env = make_atari_env("PongNoFrameskip-v4", num_envs=2)
    >>> env.observation_spec["observation"].shape, env.observation_spec["observation"].dtype
    (torch.Size([2, 4, 84, 84]), torch.uint8)
    """
    import ale_py

    gym.register_envs(ale_py)

    def wrap(env: gym.Env) -> gym.Env:
        env = gym.wrappers.AtariPreprocessing(
            env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size, terminal_on_life_loss=False
        )
        if fire_reset:
            env = FireReset(env)
        return gym.wrappers.FrameStackObservation(env, frame_stack)

    learner = ([EndOfLifeTransform(eol_attribute="lives")] if episodic_life else []) + (
        [SignTransform(in_keys=["reward"])] if clip_rewards else []
    )
    return make_gym_env(
        env_id,
        num_envs,
        device=device,
        transforms=[*learner, *transforms],
        wrap=wrap,
        vector_class=AtariVectorEnv,
        **make_kwargs,
    )


def end_of_life(env) -> EndOfLifeTransform | None:
    """The env's ``EndOfLifeTransform`` (an Atari env's, or one a spec put in ``env.transforms``),
    whose ``register_keys`` points an advantage module at its ``end-of-life`` key."""
    transform = getattr(env, "transform", None)
    for t in transform if transform is not None else ():
        if isinstance(t, EndOfLifeTransform):
            return t
    return None
