"""Record one deterministic episode of a trained run as an animated GIF and log it to the run."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict
from torchrl.envs import ExplorationType, set_exploration_type

from pgtorchrl.record.tracking import mlflow_client

__all__ = ["record_episode", "log_episode_gif"]


@torch.no_grad()
def record_episode(env_id: str, actor, seed: int = 0, max_steps: int = 10_000) -> tuple[list[np.ndarray], float]:
    """The rendered frames (``rgb_array``) and the return of one episode of ``actor``'s mode."""
    # rgb_array draws off screen: without this, pygame's SDL probes for a display and prints
    # "error: XDG_RUNTIME_DIR is invalid or not set" on a headless machine (a user's own setting wins)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = gym.make(env_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    frames: list[Any] = [env.render()]  # rgb_array: each an array
    total = 0.0
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(max_steps):
            td = actor(TensorDict({"observation": torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)}, [1]))
            action = td["action"][0]
            obs, reward, terminated, truncated, _ = env.step(int(action.argmax()) if discrete else action.numpy())
            total += float(reward)
            frames.append(env.render())
            if terminated or truncated:
                break
    env.close()
    return frames, total


def log_episode_gif(run_id: str, frames: list[np.ndarray], tracking_uri: str | None = None, fps: int = 30) -> str:
    """Writes the frames as ``video/episode.gif`` in the run's artifacts (in ``tracking_uri``'s store,
    by default ``$MLFLOW_TRACKING_URI``'s or the default one); returns that path."""

    import imageio.v2 as imageio

    buffer = io.BytesIO()
    imageio.mimsave(
        buffer, cast(list[Any], frames[::2]), format="GIF", duration=2 / fps
    )  # every other frame keeps it small
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "episode.gif"
        path.write_bytes(buffer.getvalue())
        mlflow_client(tracking_uri).log_artifact(run_id, str(path), "video")
    return "video/episode.gif"
