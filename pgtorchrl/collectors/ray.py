"""Collection across processes and machines on Ray, through TorchRL's own ``Collector``.

``pip install -e ".[ray]"``; a spec selects it with
``collector: {backend: ray, frames_per_batch: 1024, num_collectors: 4, address: null}``. With
``address: null`` a local Ray starts in this process (one CPU per collector, no dashboard);
``address: "ray://HOST:10001"`` (or ``"auto"`` on a cluster node) joins an existing cluster.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from tensordict import TensorDictBase

__all__ = ["RayCollection", "WorkerEnvs", "start_ray"]

SEED_STRIDE = 1 << 16  # worker i's seeds start at seed + (i + 1) * SEED_STRIDE: no sub-env shares a seed


@dataclass(frozen=True)
class WorkerEnvs:
    """How remote workers build their envs: the spec's ``env:`` section (a plain dict, so it
    pickles), the function that builds an env from it (a module-level function: it pickles by
    name) and the run's seed.

    Worker ``i`` seeds its env and its torch RNG (the policy samples its actions there) with
    ``seed + (i + 1) * SEED_STRIDE``: a Ray run is reproducible, and no worker repeats another
    worker's stream, the local env's (``seed``) or evaluation's (``seed + 10000``).
    """

    env_config: dict
    build: Callable[[dict], Any]
    seed: int

    def factory(self, worker: int):
        return functools.partial(_seeded_env, self.build, self.env_config, self.seed + (worker + 1) * SEED_STRIDE)


def _seeded_env(build: Callable[[dict], Any], env_config: dict, seed: int):
    torch.manual_seed(seed)  # runs in the worker's process: seeds the policy's sampling there
    env = build(env_config)
    env.set_seed(seed)
    return env


def start_ray(address: str | None, num_cpus: int) -> bool:
    """Connects to Ray unless this process already is: to ``address``, or a new local Ray with
    ``num_cpus`` CPUs. Returns whether it connected (the caller then shuts it down)."""
    try:
        import ray
    except ImportError:
        raise ImportError('backend ray needs Ray: pip install -e ".[ray]"') from None
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    ray.init(address=address, **options) if address else ray.init(num_cpus=num_cpus, **options)
    return True


class RayCollection:
    """Iterates batches from ``Collector(backend="ray", num_collectors=N)`` and sends the
    trainer's updated weights to the workers after every batch (on-policy collection).

    Args:
        worker_envs: how each worker builds (and seeds) its env.
        policy: the actor (its weights are broadcast; workers run copies).
        total_frames: the frame budget.
        frames_per_batch: frames per batch, across all workers.
        num_collectors: remote collector workers.
        address: an existing Ray cluster, or ``None`` for a local one.
    """

    def __init__(
        self,
        worker_envs: WorkerEnvs,
        policy,
        total_frames: int,
        frames_per_batch: int,
        num_collectors: int,
        address: str | None,
    ):
        from torchrl.collectors import Collector

        self._started_ray = start_ray(address, num_collectors)
        self.policy = policy
        self.collector = Collector(
            [worker_envs.factory(i) for i in range(num_collectors)],
            policy,
            backend="ray",
            num_collectors=num_collectors,
            sync=True,  # on-policy: every batch comes from every worker, all running the latest weights
            frames_per_batch=frames_per_batch,
            total_frames=total_frames,
            collector_kwargs={"auto_register_policy_transforms": False},
        )

    def __iter__(self) -> Iterator[TensorDictBase]:
        self.collector.update_policy_weights_(self.policy)
        for batch in self.collector:
            yield batch  # the trainer updates the policy here...
            self.collector.update_policy_weights_(self.policy)  # ...and the workers get it

    def shutdown(self) -> None:
        import ray

        self.collector.shutdown()
        if self._started_ray:
            ray.shutdown()
