"""Where sweep children and study trials run: in this process, or in local worker processes
(light to import: no torch here). :mod:`pgtorchrl.experiments.remote` has the same pool on Ray.

A pool runs ``fn(*args)`` jobs under keys: ``submit(key, fn, args)`` while ``free``, then
``wait()`` returns the next finished ``(key, ("ok", value) | ("error", exception))``; ``stop()``
interrupts what still runs (each run it trains ends KILLED).

Local workers are forked from one server process that has imported the trainer (torch, TorchRL)
once, instead of each paying those seconds again: multiprocessing's ``forkserver``. The command
line starts the server before it imports torch itself, so both imports overlap. As with any
multiprocessing start method but ``fork``, a script that starts a sweep or study with workers
must do it under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Hashable

__all__ = ["workers_context", "start_worker_server", "Pool", "InlinePool", "ProcessPool", "Outcome"]

_PRELOAD = ["pgtorchrl.experiments.sweep"]  # what every worker needs: the trainer, torch, TorchRL

Outcome = tuple  # ("ok", value) or ("error", exception)


def workers_context():
    """The multiprocessing context sweep workers start from."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def start_worker_server() -> None:
    """Starts the server now (it imports the trainer in the background); the first worker
    would otherwise start it and wait for those imports."""
    workers_context()
    multiprocessing.forkserver.ensure_running()


class InlinePool:
    """One job at a time, run in this process when submitted (``workers: 1``); Ctrl-C and
    ``SystemExit`` go straight through."""

    def __init__(self) -> None:
        self._done: list[tuple[Hashable, Outcome]] = []

    @property
    def free(self) -> bool:
        return not self._done

    @property
    def busy(self) -> bool:
        return bool(self._done)

    def submit(self, key: Hashable, fn: Callable[..., Any], args: tuple) -> None:
        try:
            self._done.append((key, ("ok", fn(*args))))
        except Exception as err:  # noqa: BLE001 (handed to the caller by wait, as the other pools do)
            self._done.append((key, ("error", err)))

    def wait(self) -> tuple[Hashable, Outcome]:
        return self._done.pop(0)

    def stop(self, send_interrupt: bool = True) -> None:
        """Nothing runs between calls."""


def _run_job(fn: Callable[..., Any], args: tuple, out: str) -> None:
    """A worker process: runs ``fn(*args)`` and pickles its outcome to the file ``out``."""
    try:
        outcome = ("ok", fn(*args))
    except BaseException as err:  # noqa: BLE001 (Ctrl-C included: the job's runs are already marked KILLED)
        try:
            pickle.dumps(err)
        except Exception:  # noqa: BLE001 (an exception that does not pickle travels as its text)
            err = RuntimeError(f"{type(err).__name__}: {err}")
        outcome = ("error", err)
    Path(out).write_bytes(pickle.dumps(outcome))
    raise SystemExit(0 if outcome[0] == "ok" else 1)


class Pool:
    """What the pools share: up to ``workers`` jobs running at once, by key."""

    def __init__(self, workers: int):
        self.workers = workers
        self._running: dict = {}

    @property
    def free(self) -> bool:
        return len(self._running) < self.workers

    @property
    def busy(self) -> bool:
        return bool(self._running)


class ProcessPool(Pool):
    """Up to ``workers`` jobs at once, each in its own single-threaded process forked from the
    trainer-preloaded server. ``fn`` must be a module-level function (it travels by name).
    A terminal's Ctrl-C reaches every worker (one process group); :meth:`stop` sends SIGINT
    itself only when told the workers did not get one."""

    def __init__(self, workers: int):
        super().__init__(workers)  # _running: key -> (process, outcome file)
        self._context = workers_context()
        self._tmp = tempfile.TemporaryDirectory(prefix="pgtorchrl-workers-")
        self._count = 0

    def submit(self, key: Hashable, fn: Callable[..., Any], args: tuple) -> None:
        self._count += 1
        out = Path(self._tmp.name) / f"{self._count}.pkl"
        proc = self._context.Process(target=_run_job, args=(fn, args, str(out)), name=f"pgtorchrl-worker-{self._count}")
        proc.start()
        self._running[key] = (proc, out)

    def wait(self) -> tuple[Hashable, Outcome]:
        while True:
            for key, (proc, out) in list(self._running.items()):
                if proc.exitcode is None:
                    continue
                del self._running[key]
                if not out.exists():
                    return key, ("error", RuntimeError(f"{key!r}: its worker process died (exit code {proc.exitcode})"))
                return key, pickle.loads(out.read_bytes())
            time.sleep(0.1)

    def stop(self, send_interrupt: bool = True) -> None:
        """Stops the running jobs (SIGINT: each marks its runs KILLED) and waits for them."""
        for proc, _ in self._running.values():
            if send_interrupt and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGINT)
        for proc, _ in self._running.values():
            proc.join(timeout=60)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        self._running.clear()
        self._tmp.cleanup()
