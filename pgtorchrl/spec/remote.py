"""Sweep children and study workers as Ray tasks (``sweep.backend: ray``, ``tune.backend: ray``).

``pip install -e ".[ray]"``. With ``address: null`` a local Ray starts in this process with one
CPU per worker; ``address: auto`` (on a cluster node) or ``ray://HOST:10001`` joins an existing
cluster. Each task takes one CPU and trains with one torch thread. Tasks log to the same MLflow
store as the driver: on one machine a relative ``sqlite:///mlruns/...`` store works (each task
runs in the driver's folder); across machines use a tracking server
(``MLFLOW_TRACKING_URI=http://...``) and, for studies, a shared ``tune.storage`` database. The
nodes need pgtorchrl installed, as the driver has it.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["start_ray", "ray_map"]


def start_ray(address: str | None, num_cpus: int) -> bool:
    """Connects to Ray unless this process already is: to ``address``, or a new local Ray with
    ``num_cpus`` CPUs. Returns whether it connected (the caller then shuts it down)."""
    try:
        import ray
    except ImportError:
        raise ImportError('backend ray needs Ray: pip install -e ".[ray]"') from None
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "log_to_driver": False}
    ray.init(address=address, **options) if address else ray.init(num_cpus=num_cpus, **options)
    return True


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args)


def ray_map(fn: Callable[..., Any], jobs: list[tuple], workers: int, address: str | None) -> list[Any]:
    """``[fn(*job) for job in jobs]`` as Ray tasks, at most ``workers`` at a time, results in
    order. ``fn`` must be a module-level function (it travels by name). The first failure cancels
    the tasks still running (each of their runs ends KILLED) and is raised here; so is Ctrl-C."""
    import ray

    started = start_ray(address, workers)
    remote = ray.remote(num_cpus=1, max_retries=0)(_call)
    pending = list(enumerate(jobs))
    running: dict[Any, int] = {}
    results: dict[int, Any] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                index, job = pending.pop(0)
                running[remote.remote(fn, job)] = index
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                results[running.pop(ref)] = ray.get(ref)
    except BaseException:
        for ref in running:
            ray.cancel(ref)  # a KeyboardInterrupt inside the task: its runs end KILLED
        for ref in running:
            try:
                ray.get(ref, timeout=60)
            except Exception:  # noqa: BLE001 (cancelled or failed: the first error is the one raised)
                pass
        raise
    finally:
        if started:
            ray.shutdown()
    return [results[i] for i in range(len(jobs))]
