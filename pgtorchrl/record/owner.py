"""Which process owns a RUNNING run, and the runs whose owner is gone.

A run ends FINISHED, FAILED or KILLED through its trainer or, if the trainer dies, through its
MLflow writer (which sees its pipe close). When both are killed at once (``kill -9`` of the process
group, the machine's OOM killer) nobody is left to end it, and the run would stay RUNNING. So
every run records its owner as tags (:func:`owner_tags`: host, pid and the process's start time,
which tells a reused pid apart), and every pgtorchrl command that opens the store (train, eval,
resume, compare) marks KILLED the RUNNING runs of this host whose owner is gone
(:func:`mark_abandoned_runs`), with a tag saying so. ``pgtorchrl resume`` continues them as any
KILLED run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["HOST_TAG", "PID_TAG", "START_TAG", "ABANDONED_TAG", "owner_tags", "process_alive", "mark_abandoned_runs"]

HOST_TAG = "pgtorchrl.host"
PID_TAG = "pgtorchrl.pid"
START_TAG = "pgtorchrl.pid_start"
"""The owner's start time in clock ticks after boot (Linux's ``/proc/PID/stat``; empty elsewhere)."""
ABANDONED_TAG = "pgtorchrl.abandoned"
"""Set on a run marked KILLED because its owner was gone: what was found, and by whom."""


def _start_time(pid: int) -> str:
    """The process's start time (field 22 of ``/proc/PID/stat``), ``""`` where there is no ``/proc``;
    raises ``OSError`` if there is a ``/proc`` but no such process."""
    if not Path("/proc/self/stat").exists():
        return ""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[19]  # the fields after the command's name start at field 3


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), START_TAG: _start_time(os.getpid())}


def process_alive(pid: int, start: str) -> bool:
    """Whether process ``pid``, started at ``start`` (:data:`START_TAG`), still runs on this host."""
    try:
        if start:
            return _start_time(pid) == start
        os.kill(pid, 0)
    except PermissionError:  # it exists, under another user
        return True
    except (OSError, ValueError, IndexError):
        return False
    return True


def mark_abandoned_runs(client) -> list[str]:
    """Marks KILLED every RUNNING run whose owner tags name this host and a process that is gone,
    with :data:`ABANDONED_TAG` saying so. Returns their run ids. Runs of other hosts, and runs
    written before owners were recorded, are left as they are: their owner cannot be checked here."""
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    marked = []
    running = client.search_runs(
        experiments, filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'", max_results=5000
    )
    for run in running:
        tags = run.data.tags
        try:
            pid = int(tags[PID_TAG])
        except (KeyError, ValueError):
            continue
        if process_alive(pid, tags.get(START_TAG, "")):
            continue
        client.set_tag(
            run.info.run_id,
            ABANDONED_TAG,
            f"left RUNNING by pid {pid} on {host}, which was gone; marked KILLED by pid {os.getpid()}",
        )
        client.set_terminated(run.info.run_id, status="KILLED")
        marked.append(run.info.run_id)
    return marked
