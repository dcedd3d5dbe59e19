"""Record one deterministic episode of a trained run as an animated GIF and log it to the run."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torchrl.envs import ExplorationType, set_exploration_type
from torchrl.envs.utils import step_mdp

from pgtorchrl.envs.state import vector_env
from pgtorchrl.record.tracking import mlflow_client

__all__ = ["record_episode", "rendered_frame", "log_episode_gif"]


MIN_FRAME_SIZE = 160
"""Frames smaller than this (MinAtar's 10x10) are enlarged by a whole factor, pixel by pixel."""


def rendered_frame(env) -> np.ndarray:
    """The ``rgb_array`` render of the first gymnasium env under a TorchRL env built by
    pgtorchrl (a ``GymWrapper`` over a vector env, or ``gym_native``), enlarged where small."""
    vector = vector_env(env)
    games = vector.envs if vector is not None else getattr(env, "base_env", env).envs
    frame = np.asarray(games[0].render())
    if frame.dtype.kind == "f":  # MinAtar renders colours in [0, 1]
        frame = (frame.clip(0.0, 1.0) * 255).astype(np.uint8)
    scale = max(1, -(-MIN_FRAME_SIZE // max(frame.shape[:2])))
    return frame.repeat(scale, 0).repeat(scale, 1) if scale > 1 else frame


@torch.no_grad()
def record_episode(env, actor, max_steps: int = 100_000) -> tuple[list[np.ndarray], float]:
    """The rendered frames and the return (``episode_reward``: the task's own, an Atari game's
    score) of one episode of ``actor``'s mode in ``env`` (one env, built to render:
    :func:`pgtorchrl.experiments.loading.rendering_run`), through the same preprocessing and
    transforms as in training."""
    # rgb_array draws off screen: without this, pygame's SDL probes for a display and prints
    # "error: XDG_RUNTIME_DIR is invalid or not set" on a headless machine (a user's own setting wins)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    td = env.reset()
    frames = [rendered_frame(env)]
    total = 0.0
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(max_steps):
            td = env.step(actor(td))
            frames.append(rendered_frame(env))
            total = float(td.get(("next", "episode_reward")).reshape(-1)[0])
            if bool(td.get(("next", "done")).any()):
                break
            td = step_mdp(td)
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
