"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is taken between two iterations of the training loop and holds the actor and
critic weights, both optimizers' states, the env transforms' running statistics (observation
normalization is part of the policy), torch's RNG, the training progress (frames,
iteration, evaluation schedule, the learning curve so far) and the collection state: the
envs' own states (a torch-native env's tensors; for gymnasium envs each sub-env's variables,
time-limit counter and ``np_random`` generator, MuJoCo's ``qpos``/``qvel``), the episodes the
collector carries across batches, and the evaluation env's state. It holds only tensors,
numbers, strings and containers of them, so it loads with ``torch.load(..., weights_only=True)``:
a checkpoint never runs code.

Restoring one into a freshly built pipeline of the same spec and continuing gives, on CPU, the
same metrics as the run that never stopped (``tests/test_resume.py``).
"""

from __future__ import annotations

import io
from typing import Any

import torch
from tensordict import TensorDict
from torchrl.collectors import Collector

from pgtorchrl.collectors.rollout import EpisodeCollector, NativeCollector
from pgtorchrl.envs.gym import load_transforms_state, transforms_state
from pgtorchrl.envs.state import CheckpointError, env_state, load_env_state

__all__ = ["capture", "restore", "to_bytes", "from_bytes", "CHECKPOINT_DIR", "checkpoint_path", "CheckpointError"]

FORMAT = 1
CHECKPOINT_DIR = "checkpoints"


def checkpoint_path(frames: int) -> str:
    """The artifact path of the checkpoint at ``frames`` (zero-padded: names sort by frame)."""
    return f"{CHECKPOINT_DIR}/frames_{frames:012d}.pt"


def to_bytes(state: dict) -> bytes:
    """A checkpoint's state as the bytes of ``torch.save``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict:
    """A checkpoint's state from its bytes (``weights_only``), or a :class:`~pgtorchrl.envs.state.CheckpointError`."""
    state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"not a pgtorchrl checkpoint of format {FORMAT}")
    return state


def collector_state(collector) -> dict[str, Any] | None:
    """What a collector carries between batches (episodes in progress), or ``None`` when it
    cannot be captured (remote workers)."""
    if isinstance(collector, Collector):
        # the Collector's counters and the TensorDict it carries into the next step (private:
        # TorchRL has no public accessor; its state_dict() leaves it out)
        return {"counters": collector.state_dict(), "carrier": collector._carrier.to_dict()}
    if isinstance(collector, NativeCollector):
        return {"frames": collector.frames, "obs": None if collector._obs is None else dict(collector._obs)}
    if isinstance(collector, EpisodeCollector):
        return {"frames": collector.frames}  # every batch starts from a reset: the env holds the rest
    return None


def load_collector_state(collector, state: dict[str, Any] | None) -> None:
    if state is None:
        return
    if "carrier" in state:
        collector.load_state_dict(state["counters"])
        collector._carrier.update(TensorDict(state["carrier"], batch_size=collector._carrier.batch_size))
    else:
        collector.frames = state["frames"]
        if "obs" in state:
            collector._obs = state["obs"]


# -- the whole run -------------------------------------------------------------------------------------
def capture(p, collector, eval_env, progress: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of pipeline ``p`` between two iterations; ``progress`` is the training
    loop's own state (frames, iteration, evaluation schedule, curve)."""
    state = {
        "format": FORMAT,
        "progress": progress,
        "actor": p.actor.state_dict(),
        "actor_optim": p.actor_optim.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "env": env_state(collector_env(collector, p)),
        "env_transforms": transforms_state(collector_env(collector, p)),
        "eval_env": env_state(eval_env) if eval_env is not None else None,
        "collector": collector_state(collector),
    }
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    if p.critic is not None:
        state["critic"] = p.critic.state_dict()
        state["critic_optim"] = p.critic_optim.state_dict()
    return state


def collector_env(collector, p):
    """The env a collector steps (the pipeline's, for local collectors)."""
    return getattr(collector, "env", p.env)


def restore(p, collector, eval_env, state: dict[str, Any]) -> dict[str, Any]:
    """Loads a checkpoint into a freshly built pipeline, collector and eval env of the same
    spec; returns the training progress to continue from."""
    try:
        p.actor.load_state_dict(state["actor"])
        p.actor_optim.load_state_dict(state["actor_optim"])
        if p.critic is not None:
            p.critic.load_state_dict(state["critic"])
            p.critic_optim.load_state_dict(state["critic_optim"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"the checkpoint does not fit this spec's networks: {str(err).splitlines()[0]}") from err
    load_env_state(collector_env(collector, p), state["env"])
    try:
        load_transforms_state(collector_env(collector, p), state.get("env_transforms", {}))
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(
            f"the checkpoint does not fit this spec's env transforms: {str(err).splitlines()[0]}"
        ) from err
    if eval_env is not None:
        load_env_state(eval_env, state["eval_env"])
    load_collector_state(collector, state["collector"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["progress"]


def exact(state: dict[str, Any]) -> bool:
    """Whether the checkpoint captured the collection state (remote collectors are not)."""
    return state["collector"] is not None and state["env"] is not None
