"""One process at a time creates a SQLite store.

MLflow and Optuna both create a new SQLite store's tables on first use (an Alembic migration),
and two processes doing so at once collide: one of them fails with ``UNIQUE constraint failed:
alembic_version.version_num``. That happens whenever two runs, or two workers of one Optuna study
(Optuna's own way to parallelise a study), start together on a store that does not exist yet.
Whoever opens a SQLite store holds :func:`store_lock` while doing so; other stores need no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

__all__ = ["store_lock"]


@contextlib.contextmanager
def store_lock(uri: str):
    """An exclusive lock beside a SQLite store (``mlflow.db`` -> ``mlflow.db.lock``), blocking
    until held; nothing for other URIs (a server or a database server migrates on its own), nor
    in a folder this process cannot write to."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri.removeprefix("sqlite:///") + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError:  # a read-only folder (a store only read): no process can create a store there either
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
