"""The collectors a spec can name (``collector:``), registered by name.

Each factory's keyword-only parameters are the YAML fields of its section (the keyword names of
TorchRL's ``Collector`` where it wraps it); its positional parameters are wiring (the env, the
policy, the frame budget and how remote workers build their envs). The collectors are imported
inside the factories: validating a spec reads these signatures without importing torch (see
:mod:`pgtorchrl.envs.catalog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Optional

from pydantic import Field, PositiveInt

from pgtorchrl.config.registry import Registry

if TYPE_CHECKING:
    from torchrl.envs import EnvBase

    from pgtorchrl.collectors.ray import WorkerEnvs

__all__ = ["COLLECTORS", "RAY_WORKERS"]

COLLECTORS = Registry("collector", wiring=("env", "policy", "total_frames", "worker_envs"))
RAY_WORKERS = 2  # Ray collector workers when a spec names none
FramesPerBatch = Annotated[  # 1M GPU envs x 16 steps is 1.6e7; more cannot be held
    int, Field(ge=1, le=10**8, description="Env frames per batch, over all envs (num_envs x steps per env).")
]
RayWorkers = Annotated[int, Field(ge=1, le=1024, description="Ray workers, each stepping its own copy of the env.")]
RayAddress = Annotated[
    Optional[str], Field(description="An existing Ray cluster's address (null: a local Ray started for the run).")
]


@COLLECTORS.register("sync")
def sync_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    frames_per_batch: FramesPerBatch,
    trajs_per_batch: Optional[PositiveInt] = None,
    backend: Literal["direct", "ray"] = "direct",
    num_collectors: Optional[RayWorkers] = None,
    address: RayAddress = None,
):
    """torchrl.collectors.Collector: in this process (backend direct), or on Ray workers (backend ray).

    Keyword Args:
        trajs_per_batch: Batches of this many complete trajectories instead (TorchRL's keyword;
            null: fixed-frame batches).
        backend: Direct (this process) or ray (Ray workers).
        num_collectors: Ray workers with backend ray (null: 2)."""
    if backend == "ray":
        from pgtorchrl.collectors.ray import RayCollection

        return RayCollection(
            worker_envs, policy, total_frames, frames_per_batch, num_collectors or RAY_WORKERS, address
        )
    from torchrl.collectors import Collector

    return Collector(
        env,
        policy,
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        trajs_per_batch=trajs_per_batch,
        auto_register_policy_transforms=False,
    )


@COLLECTORS.register("native")
def native_collector(
    env: "EnvBase", policy, total_frames: int, worker_envs: "WorkerEnvs", *, frames_per_batch: FramesPerBatch
):
    """Fixed-frame batches from a native env (gym_native, torch_cartpole, short_corridor) on a tensor fast path."""
    from pgtorchrl.collectors.rollout import NativeCollector
    from pgtorchrl.envs.native import TorchNativeEnv

    if not isinstance(env, TorchNativeEnv):
        raise ValueError(
            f"collector 'native' needs a native env (gym_native, torch_cartpole, short_corridor), "
            f"got {type(env).__name__}: use collector 'sync'"
        )
    return NativeCollector(env, policy, frames_per_batch, total_frames)


@COLLECTORS.register("ray")
def ray_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    frames_per_batch: FramesPerBatch,
    num_collectors: RayWorkers = RAY_WORKERS,
    address: RayAddress = None,
):
    """Short for sync with backend ray: num_collectors Ray workers; address: an existing Ray cluster."""
    return sync_collector(
        env,
        policy,
        total_frames,
        worker_envs,
        frames_per_batch=frames_per_batch,
        backend="ray",
        num_collectors=num_collectors,
        address=address,
    )


@COLLECTORS.register("episodes")
def episodes_collector(
    env: "EnvBase",
    policy,
    total_frames: int,
    worker_envs: "WorkerEnvs",
    *,
    max_steps: Annotated[int, Field(ge=1, le=10**7)] = 100_000,
):
    """One complete episode per env per batch, from a reset (i.i.d. episodes of the current policy).

    Keyword Args:
        max_steps: An episode still running after this many steps is cut (truncated)."""
    from pgtorchrl.collectors.rollout import EpisodeCollector

    return EpisodeCollector(env, policy, total_frames, max_steps=max_steps)
