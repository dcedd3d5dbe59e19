"""Sweep children and study trials as Ray tasks (``sweep.backend: ray``, ``tune.backend: ray``).

``pip install -e ".[ray]"``. With ``address: null`` a local Ray starts in this process with one
CPU per worker; ``address: auto`` (on a cluster node) or ``ray://HOST:10001`` joins an existing
cluster. Each task takes one CPU and trains with one torch thread. Tasks log to the same MLflow
store as the driver: on one machine a relative ``sqlite:///mlruns/...`` store works (each task
runs in the driver's folder); across machines use a tracking server
(``MLFLOW_TRACKING_URI=http://...``) and, for studies, a shared ``tune.storage`` database. The
nodes need pgtorchrl installed, as the driver has it.

:class:`RayPool` has the interface of :mod:`pgtorchrl.experiments.workers`' pools.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Hashable

from pgtorchrl.collectors.ray import start_ray
from pgtorchrl.experiments.workers import Pool

__all__ = ["RayPool"]


def _in_driver_folder(cwd: str, tracking_uri: str, fn: Callable[..., Any], args: tuple) -> Any:
    """A Ray task: ``fn(*args)`` in the driver's folder (relative stores mean the same files on
    one machine) with the driver's MLflow store."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    return fn(*args)


class RayPool(Pool):
    """Up to ``workers`` jobs at once, each a Ray task of one CPU, on the Ray at ``address`` (or
    a local one this pool starts and shuts down). ``fn`` must be a module-level function."""

    def __init__(self, workers: int, address: str | None, tracking_uri: str):
        import ray

        super().__init__(workers)  # _running: task reference -> key
        self.tracking_uri = tracking_uri
        self._started = start_ray(address, workers)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_in_driver_folder)

    def submit(self, key: Hashable, fn: Callable[..., Any], args: tuple) -> None:
        self._running[self._remote.remote(os.getcwd(), self.tracking_uri, fn, args)] = key

    def wait(self) -> tuple[Hashable, tuple]:
        import ray

        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        key = self._running.pop(ref)
        try:
            return key, ("ok", ray.get(ref))
        except ray.exceptions.RayTaskError as err:  # the task's own exception, as the other pools give it
            cause = err.as_instanceof_cause()
            return key, ("error", cause if isinstance(cause, BaseException) else err)
        except Exception as err:  # noqa: BLE001 (a worker that died, a cancelled task)
            return key, ("error", RuntimeError(f"{key!r}: its Ray task failed ({type(err).__name__}: {err})"))

    def stop(self, send_interrupt: bool = True) -> None:
        """Cancels the running tasks (a KeyboardInterrupt inside each: its runs end KILLED),
        waits for them, and shuts down a Ray this pool started."""
        import ray

        for ref in self._running:
            ray.cancel(ref)
        for ref in self._running:
            try:
                ray.get(ref, timeout=60)
            except Exception:  # noqa: BLE001 (cancelled or failed: the first error is the caller's)
                pass
        self._running.clear()
        if self._started:
            ray.shutdown()
