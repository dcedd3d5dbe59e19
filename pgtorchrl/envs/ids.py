"""Checking a gymnasium env id, light to import (gymnasium's registry, no torch): spec
validation runs it before the command line has imported torch."""

from __future__ import annotations

import difflib
import importlib.util

import gymnasium as gym

from pgtorchrl.config.registry import shown

__all__ = ["check_gym_id", "check_atari_id", "CUSTOM_ENV_HINT", "PGTORCHRL_GYM_ENVS", "ATARI_EXTRA"]

PGTORCHRL_GYM_ENVS: dict[str, tuple[str, dict]] = {
    "pgtorchrl/MaskedChoice-v0": ("pgtorchrl.envs.masked:MaskedChoiceEnv", {}),
    "pgtorchrl/CopyDigits-v0": ("pgtorchrl.envs.copy_task:CopyEnv", {"nvec": [3, 4, 5, 6]}),
    "pgtorchrl/CopyBits-v0": ("pgtorchrl.envs.copy_task:CopyEnv", {"n_bits": 8}),
    "pgtorchrl/CartPoleNoVel-v1": ("pgtorchrl.envs.masked_velocity:masked_velocity_env", {"base_id": "CartPole-v1"}),
    "pgtorchrl/PendulumNoVel-v1": ("pgtorchrl.envs.masked_velocity:masked_velocity_env", {"base_id": "Pendulum-v1"}),
    "pgtorchrl/MemoryCue-v0": ("pgtorchrl.envs.memory_cue:MemoryCueEnv", {"length": 10}),
}
"""pgtorchrl's own gymnasium envs, registered here by entry point and default keyword arguments
(their module loads at ``gym.make``)."""
for _id, (_entry_point, _kwargs) in PGTORCHRL_GYM_ENVS.items():
    if _id not in gym.envs.registry:
        gym.register(id=_id, entry_point=_entry_point, kwargs=_kwargs)

MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
"""MinAtar's games (Young & Tian 2019), registered as the ``minatar`` package's own
``minatar.gym.register_envs`` does, by entry point: ``MinAtar/Breakout-v1`` (the game's minimal
action set) and ``-v0`` (all 6 actions). The package itself is the ``minatar`` extra."""
MINATAR_EXTRA = "pip install -c constraints.txt -e '.[minatar]'"
for _game in MINATAR_GAMES:
    for _version, _minimal in (("v0", False), ("v1", True)):
        _minatar_id = f"MinAtar/{_game.title().replace('_', '')}-{_version}"
        if _minatar_id not in gym.envs.registry:
            kwargs = dict(game=_game, use_minimal_action_set=_minimal)
            gym.register(id=_minatar_id, entry_point="minatar.gym:BaseEnv", kwargs=kwargs)

ATARI_EXTRA = "pip install -c constraints.txt -e '.[atari]'"
"""The ``atari`` extra: ``ale-py`` (its wheel ships the ROMs) and OpenCV (gymnasium's ``AtariPreprocessing``)."""


def check_atari_id(env_id: str) -> None:
    """Raises ``ValueError`` if the ``atari`` extra is missing or the ALE has no game ``env_id``
    (``PongNoFrameskip-v4``, ``ALE/Pong-v5``), with the nearest ids.

    >>> check_atari_id("CartPole-v1")
    Traceback (most recent call last):
    ...
    ValueError: 'CartPole-v1' is not an Atari game of ale-py (ids such as PongNoFrameskip-v4 or ALE/Pong-v5); for other gymnasium ids use env 'gym'
    """  # noqa: E501 (a doctest's exact output)
    missing = [name for name in ("ale_py", "cv2") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"env 'atari' needs {' and '.join(missing)}: {ATARI_EXTRA}")
    import ale_py

    gym.register_envs(ale_py)
    games = [k for k in gym.envs.registry if k.startswith("ALE/") or k.endswith("NoFrameskip-v4")]
    if env_id in games:
        return
    hint = _did_you_mean(env_id, games)
    if hint:
        raise ValueError(f"unknown Atari game {shown(env_id)}{hint}")
    raise ValueError(
        f"{shown(env_id)} is not an Atari game of ale-py (ids such as PongNoFrameskip-v4 or ALE/Pong-v5); "
        "for other gymnasium ids use env 'gym'"
    )


CUSTOM_ENV_HINT = (
    "for your own env, register it (gymnasium.register) in a module listed under plugins:, "
    "or write env_id: module:EnvId with that module under plugins:"
)


def _did_you_mean(name: str, ids: list[str]) -> str:
    """``"; did you mean 'A' or 'B'?"`` with the ids nearest ``name``, or ``""`` if none is near."""
    close = difflib.get_close_matches(name, ids, n=2, cutoff=0.6) if len(name) < 200 else []
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def check_gym_id(env_id: str) -> None:
    """Raises ``ValueError`` if gymnasium does not know ``env_id``, with the nearest registered
    ids and how to bring one's own env. ``module:EnvId`` (gymnasium's own form) is checked as
    ``EnvId``: the module is imported beforehand, by the spec's ``plugins:``.

    >>> check_gym_id("CartPole-v1")
    >>> check_gym_id("CartPol-v1")
    Traceback (most recent call last):
    ...
    ValueError: unknown gymnasium env id 'CartPol-v1'; did you mean 'CartPole-v1' or 'CartPole-v0'? (for your own env, register it (gymnasium.register) in a module listed under plugins:, or write env_id: module:EnvId with that module under plugins:)
    """  # noqa: E501 (a doctest's exact output)
    name = env_id.partition(":")[2] or env_id
    if name.startswith("MinAtar/") and name in gym.envs.registry and importlib.util.find_spec("minatar") is None:
        raise ValueError(f"env id {shown(env_id)} needs the minatar package: {MINATAR_EXTRA}")
    if name in gym.envs.registry:
        return
    hint = _did_you_mean(name, list(gym.envs.registry))
    raise ValueError(f"unknown gymnasium env id {shown(env_id)}{hint} ({CUSTOM_ENV_HINT})")
