"""The processes a sweep's workers run in (light to import: no torch here).

Workers are forked from one server process that has imported the trainer (torch, TorchRL)
once, instead of each paying those seconds again: multiprocessing's ``forkserver``. The command
line starts the server before it imports torch itself, so both imports overlap. As with any
multiprocessing start method but ``fork``, a script that starts a sweep with workers must do it
under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

__all__ = ["workers_context", "start_worker_server"]

_PRELOAD = ["pgtorchrl.spec.sweep"]  # what every worker needs: the trainer, torch, TorchRL


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
