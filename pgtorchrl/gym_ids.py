"""Checking a gymnasium env id, light to import (gymnasium's registry, no torch): spec
validation runs it before the command line has imported torch."""
from __future__ import annotations

import difflib

import gymnasium as gym

__all__ = ["check_gym_id"]


def check_gym_id(env_id: str) -> None:
    """Raises ``ValueError`` with the nearest registered ids if gymnasium does not know ``env_id``."""
    if env_id in gym.envs.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "; see gymnasium.envs.registry for the ids"
    raise ValueError(f"unknown gymnasium env id {env_id!r}{hint}")
