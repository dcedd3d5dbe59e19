"""The MLflow writer process behind :class:`pgtorchrl.record.tracking.TrackedRun`.

Usage: ``python -m pgtorchrl.record.mlflow_writer TRACKING_URI EXPERIMENT``. It imports MLflow at
once (while the trainer builds its pipeline) and opens the store and the experiment, creating them if
they are new, only with the first ``open`` or ``reopen``; it reads pickled messages from stdin, in
order, and writes them to MLflow
(``metrics`` messages arriving within :data:`_BATCH_SECONDS` of each other go out together, in one
``log_batch``: a store pays per call far more than per metric, and a trainer logging every few
milliseconds would otherwise keep this process busy on a core it shares with training); reports on stdout with
one line per event (``opened RUN_ID EXPERIMENT_ID RUN_NAME``, ``error MESSAGE``, ``ended STATUS``).
If stdin closes before an ``end`` message (the trainer died), the run is marked KILLED.
Messages: ``("open", {...})``, ``("reopen", run_id, tags)``, ``("metrics", {key: value}, step, timestamp_ms)``,
``("tag", key, value)``, ``("artifact", path, bytes)``, ``("plot", curves, tracking, path)``,
``("model", name, files, io, example, register, step)``,
``("end", status, error_or_None)``.
"""

from __future__ import annotations

import functools
import os
import pickle
import queue
import signal
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from pgtorchrl.record.logged_model import log_policy_model, register_policy
from pgtorchrl.record.owner import mark_abandoned_runs
from pgtorchrl.record.plots import learning_curve_png, plot_options
from pgtorchrl.record.store_lock import store_lock

_BATCH_LIMIT = 1000  # MLflow's log_batch limit: 1000 metrics a call
_BATCH_SECONDS = 1.0  # metrics wait at most this long for others to share their log_batch
_END_OF_INPUT = ("eof",)  # the trainer closed the pipe (or sent something unreadable)


def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted (what ``pip freeze`` lists)."""
    lines = {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]}
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def _say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


class _Writer:
    """Prepared before any message arrives: MLflow and the plotting stack imported and, if the
    store and the experiment exist already, both opened (the runs it holds whose owner is gone
    marked KILLED: :mod:`pgtorchrl.record.owner`). Nothing is created before the first run opens
    (``open`` or ``reopen``): a command that fails or is interrupted before its pipeline has built
    leaves no store behind, not even an empty one."""

    def __init__(self, uri: str, experiment: str):
        import mlflow  # noqa: F401 (imported now, while the trainer builds its pipeline)

        self.uri, self.experiment = uri, experiment
        self.run_id: str | None = None
        self.logged: dict[str, set[int]] = {}  # metric -> the steps it was logged at before a resume
        self.experiment_id: str | None = None
        database = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if database is None or (database.is_file() and database.stat().st_size > 0):  # opening creates nothing
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found is not None else None
        # import the plotting stack now, while the trainer is busy, not when the final plot is due
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

    @functools.cached_property
    def client(self):
        """The store's client, the store (its folder, its tables) created if it does not exist yet;
        the runs it holds whose trainer and writer were both killed are marked KILLED as it opens."""
        from mlflow.tracking import MlflowClient

        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with store_lock(self.uri):  # a new SQLite store is created (migrated) by one process at a time
            client = MlflowClient(self.uri)
        mark_abandoned_runs(client)
        return client

    @property
    def opened(self) -> str:
        """The open run's id (every message but ``open`` and ``resume`` comes after one of them)."""
        if self.run_id is None:
            raise RuntimeError("no MLflow run is open yet")
        return self.run_id

    def open(self, cfg: dict) -> None:
        import mlflow
        from mlflow.entities import Param

        client = self.client
        experiment_id = self.experiment_id
        if experiment_id is None:  # a new store or experiment: created now, as the run opens
            with store_lock(self.uri):  # as the store: two runs creating one experiment at once, one creates it
                mlflow.set_tracking_uri(self.uri)
                experiment_id = mlflow.set_experiment(self.experiment).experiment_id
        run = client.create_run(experiment_id, run_name=cfg["run_name"], tags=cfg["tags"])
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in cfg["params"].items()]
        for i in range(0, len(params), 100):  # MLflow's log_batch limit: 100 params a call
            self.client.log_batch(self.opened, params=params[i : i + 100])
        for path, text in cfg["texts"].items():
            self.artifact(path, text.encode())
        # said once the run holds its spec: a run whose writer dies from here on can be resumed
        _say(f"opened {self.run_id} {experiment_id} {run.info.run_name}")
        # here, not in the trainer: listing every distribution takes a few tenths of a second
        self.artifact("environment/requirements.txt", installed_packages().encode())

    def reopen(self, run_id: str, tags: dict) -> None:
        """Continues an existing run (``pgtorchrl resume``): RUNNING again, and each metric's
        steps already logged are skipped (the resumed run recomputes them from a checkpoint)."""
        run = self.client.get_run(run_id)
        self.run_id = run_id
        self.logged = {key: {m.step for m in self.client.get_metric_history(run_id, key)} for key in run.data.metrics}
        self.client.update_run(run_id, status="RUNNING")
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        _say(f"opened {run_id} {run.info.experiment_id} {run.info.run_name}")

    def metrics(self, rows: list[tuple[dict, int, int]]) -> None:
        """``rows``: ``(values, step, timestamp_ms)`` per ``metrics`` message, in order."""
        from mlflow.entities import Metric

        batch = [
            Metric(k, v, timestamp, step)
            for values, step, timestamp in rows
            for k, v in values.items()
            if step not in self.logged.get(k, ())
        ]
        for i in range(0, len(batch), _BATCH_LIMIT):
            self.client.log_batch(self.opened, metrics=batch[i : i + _BATCH_LIMIT])

    def tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.opened, key, value)

    def artifact(self, path: str, data: bytes) -> None:
        target = Path(path)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / target.name
            local.write_bytes(data)
            folder = str(target.parent) if str(target.parent) != "." else None
            self.client.log_artifact(self.opened, str(local), folder)

    def plot(self, curves: dict, tracking: dict, path: str) -> None:
        self.artifact(path, learning_curve_png(curves, **plot_options(tracking)))

    def model(
        self, name: str, files: dict, io: dict, example: dict, register: tuple[str, float] | None, step: int
    ) -> None:
        """The run's policy as the MLflow Model ``name``, registered if ``register`` is given
        (:mod:`pgtorchrl.record.logged_model`); says ``model NAME URI [models:/REG/VERSION champion|-]``."""
        tags = {"pgtorchrl.policy": name}
        uri = log_policy_model(self.client, self.opened, name, files, io, example, tags, step)
        self.client.set_tag(self.opened, f"model.{name}", uri)
        line = f"model {name} {uri}"
        if register is not None:
            registered, eval_return = register
            version, champion = register_policy(self.client, self.uri, uri, registered, eval_return)
            self.client.set_tag(self.opened, "registered_model", f"models:/{registered}/{version}")
            line += f" models:/{registered}/{version} {'champion' if champion else '-'}"
        _say(line)

    def end(self, status: str, error: str | None) -> None:
        if error:
            self.client.set_tag(self.opened, "error", error)
        self.client.set_terminated(self.opened, status=status)


def _read_in_background(stream) -> queue.Queue:
    """Unpickles ``stream``'s messages on a thread into a queue (``_END_OF_INPUT`` last), so
    the writer can see which messages are already waiting."""
    messages: queue.Queue = queue.Queue()

    def read() -> None:
        received = False
        while True:
            try:
                messages.put(pickle.load(stream))
                received = True
            except Exception:  # noqa: BLE001 (EOF: the trainer is gone (or wrote something unreadable)
                if not received:
                    # gone before saying anything (Ctrl-C during its start-up): no run, no store to
                    # close, so leave now rather than after MLflow's import (a second or more)
                    os._exit(1)
                messages.put(_END_OF_INPUT)
                return

    threading.Thread(target=read, daemon=True).start()
    return messages


def _coalesced(messages: queue.Queue):
    """The messages in order, each run of consecutive ``metrics`` messages that arrive within
    :data:`_BATCH_SECONDS` of the first merged into one ``("metrics", [(values, step,
    timestamp), ...])`` of at most :data:`_BATCH_LIMIT` metrics. Any other message (the run's
    end included) sends the waiting metrics first, so nothing is held back or lost."""
    held = None
    while True:
        message, held = (held, None) if held is not None else (messages.get(), None)
        if message[0] != "metrics":
            yield message
            continue
        rows, size = [tuple(message[1:])], len(message[1])
        deadline = time.monotonic() + _BATCH_SECONDS
        while size < _BATCH_LIMIT:
            try:
                following = messages.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if following[0] != "metrics":
                held = following
                break
            rows.append(tuple(following[1:]))
            size += len(following[1])
        yield ("metrics", rows)


def main(argv: list[str]) -> int:
    """The writer process: ``argv`` is the tracking URI and the experiment; messages arrive on stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer decides how the run ends
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri, experiment = argv
    # reading starts before MLflow loads: a trainer that is quicker than these imports never
    # blocks on a full pipe (64 KB: one checkpoint fills it)
    messages = _read_in_background(sys.stdin.buffer)
    try:
        writer = _Writer(uri, experiment)
    except Exception as err:  # noqa: BLE001 (any failure to open the store is reported to the trainer)
        _say(f"error {type(err).__name__}: {err}")
        return 1
    failed = None  # the first write that failed, as "Type: message"
    for message in _coalesced(messages):
        if message is _END_OF_INPUT:  # the trainer is gone without saying how the run ended
            if writer.run_id is not None:
                writer.end("KILLED", None)
            return 1
        kind, *args = message
        if failed and kind != "end":
            continue
        if kind == "end" and failed and args[0] == "FINISHED":
            args = ["FAILED", args[1] or failed]  # a write was lost: the run did not finish cleanly
        try:
            getattr(writer, kind)(*args)
        except Exception as err:  # noqa: BLE001 (report once, then only try to close the run)
            _say(f"error {type(err).__name__}: {err}")
            failed = f"{type(err).__name__}: {err}"[:5000]
            if kind == "end" or writer.run_id is None:
                return 1
            continue
        if kind == "end":
            _say(f"ended {args[0]}")
            return 0
    return 1  # not reached: the messages end with the trainer's "end" or with _END_OF_INPUT


if __name__ == "__main__":
    from pgtorchrl.record.fast_exit import leave

    leave(main(sys.argv[1:]))  # the run is closed and every write committed (see fast_exit for why)
