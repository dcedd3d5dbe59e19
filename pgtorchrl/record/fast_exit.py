"""Leaving a process without the interpreter's teardown: the one place ``os._exit`` is called.

Why: unloading torch, tensordict and TorchRL takes 0.6-0.8 s in the command line's process, and
MLflow, SQLAlchemy and matplotlib a few tenths in the writer's, which the command waits for; a
whole ``vpg_cartpole`` run went from 8.1 to 6.2 s when both left this way (commit 33a2e20). It is
safe only where nothing is left to release: the MLflow run is closed, every file written.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from tqdm import tqdm

__all__ = ["leave", "thread_locked_progress_bars"]


def leave(code: int) -> None:
    """Flushes logging and the standard streams, then ends the process with ``code`` at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def thread_locked_progress_bars() -> None:
    """tqdm's bars (the training bar; the one torch.fx opens while exporting) lock with a thread
    lock, not tqdm's default multiprocessing one: a semaphore that the resource tracker reports as
    leaked when the command line leaves with :func:`leave`."""
    tqdm.set_lock(threading.RLock())
