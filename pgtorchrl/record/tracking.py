"""MLflow tracking of a pipeline run: params, batched metrics, artifacts, and a final status.

The run is a context manager: it ends FINISHED on success, KILLED on Ctrl-C/SIGTERM and FAILED
(with the error as the ``error`` tag) on an exception, so no run is ever left RUNNING. The
MLflow calls themselves happen in :mod:`pgtorchrl.record.mlflow_writer`, a child process.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import IO, Any, cast

import yaml

from pgtorchrl.config.artifacts import SPEC
from pgtorchrl.pipeline.parse import flatten
from pgtorchrl.pipeline.schema import Spec, in_memory_store
from pgtorchrl.record.owner import owner_tags
from pgtorchrl.record.store_lock import store_lock

__all__ = [
    "DEFAULT_TRACKING_URI",
    "RECOVERY_DIR",
    "CLOSING_INTERRUPT",
    "resolve_tracking_uri",
    "mlflow_client",
    "check_store",
    "in_memory_store",
    "TrackedRun",
    "TrackingError",
    "package_versions",
    "run_lock",
]

#: The default store: SQLite under the top-level ``mlruns/`` folder, artifacts beside it.
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
#: Where a run whose tracking failed mid-run keeps its state and metrics (relative to the working folder).
RECOVERY_DIR = Path("mlruns") / "recovered"
CLOSING_INTERRUPT = "while the run was being closed"
"""How a ``KeyboardInterrupt`` raised by :meth:`TrackedRun.__exit__` begins: Ctrl-C came once the run's
end was decided; it is closed as it ended, and the message goes on with :meth:`TrackedRun.outcome`."""
PACKAGES = ("pgtorchrl", "torch", "torchrl", "tensordict", "gymnasium", "mlflow", "numpy")


def resolve_tracking_uri(spec_uri: str | None, create: bool = True) -> str:
    """The spec's ``tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the default
    (its folder made, unless not ``create``: commands that only read runs create no store)."""
    uri = spec_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if create and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def resolved_yaml(spec: Spec) -> str:
    """The spec as validated, every default filled in: the run's ``spec/resolved.yaml``."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def state_dict_bytes(state_dict: dict[str, Any]) -> bytes:
    """A ``state_dict`` as ``torch.save`` writes it (tensors detached, on the CPU)."""
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def mlflow_client(spec_uri: str | None = None):
    """An ``MlflowClient`` on :func:`resolve_tracking_uri`'s store. A client creates a SQLite store
    that does not exist yet: it does so under :func:`~pgtorchrl.record.store_lock.store_lock`, so
    that another process creating it at the same moment does not fail."""
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(spec_uri)
    with store_lock(uri):
        return MlflowClient(uri)


SERVER_DRIVERS = {
    "postgresql": ("psycopg2", "psycopg2-binary"),
    "mysql": ("pymysql", "pymysql"),
    "mssql": ("pyodbc", "pyodbc"),
}
"""A database store's scheme -> the module SQLAlchemy needs for it, and the package that brings it."""
SCHEMES = ("sqlite", "http", "https", "databricks", *SERVER_DRIVERS)
"""The tracking URI schemes a run can be stored under (MLflow 3's file store is not one: see below)."""


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot hold runs, said before anything is written (``None``: it may): MLflow's
    file store (refused by MLflow 3.17 unless forced, and in maintenance), an unknown scheme, a
    database driver that is not installed, a SQLite path whose file is not a SQLite database or
    whose folder is a file."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else "file"
    fix = "use sqlite:///mlruns/mlflow.db, or a tracking server's http://HOST:PORT"
    if scheme == "file" or len(scheme) == 1:  # a plain path (a Windows drive letter too) is the file store
        return f"tracking URI {uri!r} is MLflow's file store, which MLflow 3 no longer writes by default: {fix}"
    if scheme not in SCHEMES:
        return f"tracking URI {uri!r} has the unknown scheme {scheme!r}: {fix}"
    if scheme in SERVER_DRIVERS:
        module, package = SERVER_DRIVERS[scheme]
        if importlib.util.find_spec(module) is None:
            return f"tracking URI {uri!r} needs its database driver: pip install {package}"
    if scheme == "sqlite" and uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        folder = next((p for p in path.parents if p.exists()), Path("."))
        if not folder.is_dir():
            return f"tracking URI {uri!r}: {folder} is a file, not a folder: name a store in a folder"
        if path.exists() and not path.is_file():
            return f"tracking URI {uri!r}: {path} is not a file: name a SQLite file, e.g. sqlite:///mlruns/mlflow.db"
        if path.is_file() and path.stat().st_size:
            with open(path, "rb") as file:
                if file.read(16) != b"SQLite format 3\x00":
                    return f"tracking URI {uri!r}: {path} is not a SQLite database: name another file"
    return None


def _unwritable(path: Path) -> str | None:
    """Why ``path`` (or, if it does not exist yet, the folder that would hold it) cannot be
    written by this process, or ``None``."""
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path("."))
    if os.access(existing, os.W_OK):
        return None
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    return f"{existing} is {'on a read-only file system' if read_only else 'not writable by this user'}"


def write_problem(uri: str) -> str | None:
    """Why a run could not be written under ``uri``, said before it trains (``None``: it can): a
    SQLite store, its folder (SQLite writes its journal beside it) or the artifacts' and
    :data:`RECOVERY_DIR`'s ``mlruns/`` folder that this process cannot write."""
    fix = "make it writable, or set MLFLOW_TRACKING_URI (or tracking.tracking_uri) to a store in a writable folder"
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        for path in ([database] if database.exists() else []) + [database.parent]:
            reason = _unwritable(path)
            if reason:
                return f"the MLflow store {database} cannot be written: {reason}; {fix}"
    reason = _unwritable(RECOVERY_DIR)
    if reason:
        return (
            f"the run's artifacts and recovery folder {RECOVERY_DIR.parent}/ cannot be written: {reason}; "
            "make it writable, or train from another folder"
        )
    return None


def check_store(spec_uri: str | None, must_exist: bool = False, timeout: float = 5.0, writes: bool = True) -> str:
    """The tracking URI, checked before anything trains or is read: one that can hold runs
    (:func:`uri_problem`), not an in-memory SQLite store, an existing SQLite file when
    ``must_exist`` (``eval``, ``resume``), a store and folders this process can write when
    ``writes`` (:func:`write_problem`), and a tracking server that answers within ``timeout``
    seconds. Raises a one-line :class:`TrackingError`."""
    uri = resolve_tracking_uri(spec_uri, create=False)  # nothing is created before the pipeline builds
    problem = uri_problem(uri)
    if problem is not None:
        raise TrackingError(problem)
    if in_memory_store(uri):
        raise TrackingError(
            f"tracking URI {uri!r} is an in-memory SQLite store: the run would vanish with this "
            f"process; use a file, e.g. sqlite:///mlruns/mlflow.db"
        )
    if uri.startswith("sqlite:///") and must_exist:
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise TrackingError(
                f"no MLflow store at {path}: set MLFLOW_TRACKING_URI to the store the run is in "
                f"(or run from the folder you trained in)"
            )
    problem = write_problem(uri) if writes else None
    if problem is not None:
        raise TrackingError(problem)
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).read()
        except OSError as err:  # refused, unreachable, timed out, or an HTTP error
            reason = getattr(err, "reason", err)
            raise TrackingError(
                f"the tracking server {uri} does not answer ({reason}): start it, or point "
                f"MLFLOW_TRACKING_URI elsewhere; nothing was trained"
            ) from None
    return uri


def package_versions() -> dict[str, str]:
    """The installed versions of the packages a run depends on, by name (logged as run tags)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _child_env() -> dict[str, str]:
    """This process's environment, with pgtorchrl importable even from an uninstalled checkout."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the pgtorchrl package
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


class TrackingError(RuntimeError):
    """The MLflow writer process failed (store unreachable, disk full ...)."""


def run_lock(run_id: str, spec_uri: str | None = None):
    """An exclusive, non-blocking lock on one run (``pgtorchrl resume``: two resumes of one run
    would write the same steps twice). Returns the open lock file (keep it open while the
    run trains) or raises :class:`TrackingError` naming the holder."""

    uri = resolve_tracking_uri(spec_uri, create=False)
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).resolve().parent / ".locks"
    else:  # a server: a lock per machine, keyed by the server's URI
        folder = Path(tempfile.gettempdir()) / "pgtorchrl-locks" / hashlib.sha1(uri.encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / f"{run_id}.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise TrackingError(f"run {run_id} is already being resumed ({holder}): wait for it to end") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


class TrackedRun:
    """One MLflow run for one pipeline run, written by a separate writer process.

    ``import mlflow``, the store's set-up and every write run in a child process
    (``python -m pgtorchrl.record.mlflow_writer``) on another core, fed in order through a pipe, so
    tracking costs the training loop almost nothing. The run always ends with a status:
    FINISHED, KILLED (Ctrl-C, or this process dying: the writer then sees its pipe close) or
    FAILED with the error as the ``error`` tag.

    Args:
        spec: the validated spec (its flattened fields become the run's params).
        spec_text: the spec file as the user wrote it (logged as ``spec/given.yaml``).
        tags: extra run tags (e.g. ``mlflow.parentRunId`` for a sweep's child run).
        run_name: overrides ``spec.tracking.run_name``.
        resume_run_id: reopen this existing run instead of creating one (``pgtorchrl resume``):
            its params and spec artifacts stay, and metrics at steps it already logged are not
            logged twice.
    """

    def __init__(
        self,
        spec: Spec,
        spec_text: str | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        resume_run_id: str | None = None,
    ):
        self.spec = spec
        self.spec_text = spec_text
        self.extra_tags = dict(tags or {})
        self.requested_name = run_name or spec.tracking.run_name
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self._proc: subprocess.Popen | None = None
        self._stdin: IO[bytes]  # the writer's pipes, once start_writer has started it
        self._stdout: IO[bytes]
        self._lines: list[str] = []
        self._opened = threading.Event()
        self._writer_gone = threading.Event()  # set by the reader when the writer's stdout closes
        self.final_status: str | None = None  # what the store says the run ended as, once it has ended
        self._warned: set[str] = set()  # the kinds of warning already given (see warn_once)

    @property
    def _writer(self) -> subprocess.Popen:
        """The writer process (:meth:`start_writer` starts it)."""
        if self._proc is None:
            raise TrackingError("the MLflow writer was not started: call start_writer() first")
        return self._proc

    # -- lifecycle -------------------------------------------------------------------------------
    def start_writer(self) -> "TrackedRun":
        """Starts the writer process early: it imports MLflow while this process builds the
        pipeline. No run exists, and no store is created, until :meth:`__enter__`."""
        if self._proc is None:
            uri = resolve_tracking_uri(self.spec.tracking.tracking_uri, create=False)  # the writer creates it
            self._stderr = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pgtorchrl.record.mlflow_writer", uri, self.spec.experiment],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                # a tracking server that goes away fails a write within seconds, not minutes of retries
                env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", **_child_env()},
                start_new_session=True,  # Ctrl-C reaches the trainer, which then ends the run itself
            )
            # the writer's pipes (Popen types them optional: both are PIPEs here)
            self._stdin, self._stdout = cast(IO[bytes], self._proc.stdin), cast(IO[bytes], self._proc.stdout)
            self._reader = threading.Thread(target=self._read, name="pgtorchrl-mlflow-reader", daemon=True)
            self._reader.start()
        return self

    def discard(self) -> None:
        """Stops a writer whose run was never opened (the pipeline failed to build)."""
        if self._proc is not None and self.run_id is None:
            self._stdin.close()
            self._writer.wait(timeout=60)

    def __enter__(self) -> "TrackedRun":
        self.start_writer()
        if self.resume_run_id is not None:
            self._send("reopen", self.resume_run_id, {**self.extra_tags, **owner_tags()})
            return self
        texts = {SPEC: resolved_yaml(self.spec)}  # the writer adds environment/requirements.txt
        if self.spec_text is not None:
            texts["spec/given.yaml"] = self.spec_text
        tags = {f"version.{k}": v for k, v in package_versions().items()}
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        tags.update(self.spec.tracking.tags)
        tags.update(self.extra_tags)
        tags.update(owner_tags())  # who to ask whether the run is still RUNNING (see record/owner.py)
        self._send(
            "open",
            {
                "run_name": self.requested_name,
                "tags": tags,
                "params": {k: str(v) for k, v in flatten(self.spec).items()},
                "texts": texts,
            },
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        status, error = "FINISHED", None
        if exc_type is not None:
            killed = issubclass(exc_type, (KeyboardInterrupt, SystemExit))
            status = "KILLED" if killed else "FAILED"
            error = None if killed else f"{exc_type.__name__}: {exc}"[:5000]
        try:
            self._write("end", status, error)  # even after a writer error: the run's end is what matters now
            self._stdin.close()
        except OSError:  # BrokenPipeError among them
            pass
        interrupted = False
        while True:  # the run's end is decided: an interrupt now changes nothing, so wait on
            try:
                self._writer.wait(timeout=300)
                break
            except subprocess.TimeoutExpired:
                self._writer.kill()
            except KeyboardInterrupt:
                interrupted = True
        self._reader.join(timeout=10)
        ended = [line.split(" ", 1)[1] for line in self._lines if line.startswith("ended ")]
        if ended:
            self.final_status = ended[0]  # the writer's word: FAILED when a write was lost before the end
        elif self.run_id is not None:  # the writer died or failed: close the run from here
            self.final_status = self._close_directly(status, error or self._problem() or "the MLflow writer stopped")
        problem = self._problem()
        if interrupted and (exc_type is not None or problem):  # another error is the caller's line: say this too
            print(f"pgtorchrl: interrupted while the run was being closed: {self.outcome()}", file=sys.stderr)
        if problem and exc_type is None:
            raise TrackingError(f"{problem}; {self.outcome()}")
        if interrupted and exc_type is None:  # the run is closed as it ended; the interrupt still stops the caller
            raise KeyboardInterrupt(f"{CLOSING_INTERRUPT}: {self.outcome()}")

    def _close_directly(self, status: str, error: str | None) -> str | None:
        """Ends the run from this process when the writer cannot (it died, or the store failed
        it): FAILED (or KILLED) with the reason as the ``error`` tag. Returns the status the run
        now has, or ``None`` if the store cannot be reached either."""
        status = "FAILED" if status == "FINISHED" else status  # the writer's failure: not a clean finish
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # a server that is gone: say so within seconds
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"
        try:
            client = mlflow_client(self.spec.tracking.tracking_uri)
            if error:
                client.set_tag(self.run_id, "error", error[:5000])
            client.set_terminated(self.run_id, status=status)
            return status
        except Exception:  # noqa: BLE001 (the store is gone too: say so, do not mask the first error)
            return None

    def outcome(self) -> str:
        """What happened to the MLflow run, in words, for the command line's last line."""
        if self.run_id is None:
            return "no MLflow run was opened"
        if self.final_status is None:
            return f"the MLflow run {self.run_id} could not be closed (its store is unreachable)"
        return f"the MLflow run {self.run_id} is marked {self.final_status}"

    def _problem(self) -> str | None:
        errors = [line[6:] for line in self._lines if line.startswith("error ")]
        if errors:
            return f"MLflow tracking failed: {errors[0]}"
        code = self._writer.poll()
        if code not in (0, None) or (
            self._writer_gone.is_set() and not any(line.startswith("ended ") for line in self._lines)
        ):
            if code is not None and code < 0:
                return f"the MLflow writer process was killed (signal {-code})"
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            errors = [line for line in lines if "Error" in line or "Exception" in line]  # not MLflow's INFO lines
            return f"the MLflow writer process exited with {code}: {errors[-1][:300] if errors else 'no message'}"
        return None

    def _read(self) -> None:
        for raw in self._stdout:
            line = raw.decode().rstrip("\n")
            self._lines.append(line)
            if line.startswith("opened "):
                self.run_id = line.split(" ", 2)[1]
                self._opened.set()
        self._writer_gone.set()
        self._opened.set()  # the writer is gone: nobody waits forever

    def _send(self, *message: Any) -> None:
        """Sends a message to the writer, or raises :class:`TrackingError` at once if the writer
        has failed or is gone (killed, crashed): the trainer stops rather than train untracked."""
        if any(line.startswith("error ") for line in self._lines) or self._writer_gone.is_set():
            self._writer.poll()
            raise TrackingError(self._problem() or "the MLflow writer process is gone")
        try:
            self._write(*message)
        except OSError:  # BrokenPipeError among them
            self._reader.join(timeout=5)
            raise TrackingError(self._problem() or "the MLflow writer process is gone") from None

    def _write(self, *message: Any) -> None:
        pickle.dump(message, self._stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._stdin.flush()

    def wait_opened(self, timeout: float = 120.0) -> str:
        """Blocks until the MLflow run exists and returns its id."""
        self._opened.wait(timeout)
        if self.run_id is None:
            raise TrackingError(self._problem() or "the MLflow run was not created in time")
        return self.run_id

    # -- logging ---------------------------------------------------------------------------------
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """All of one iteration's metrics in one ``log_batch`` (one round trip to the store)."""
        self._send("metrics", {k: float(v) for k, v in metrics.items()}, int(step), int(time.time() * 1000))

    def set_tag(self, key: str, value: str) -> None:
        self._send("tag", key, str(value))

    def warn_once(self, kind: str, message: str) -> None:
        """Warns on stderr and as the run's ``warning`` tag, once per ``kind`` for the run
        (a diverging network is said once, not at every checkpoint)."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        print(f"pgtorchrl: warning: {message}", file=sys.stderr)
        self.set_tag("warning", message)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.log_bytes(text.encode(), artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        self._send("artifact", artifact_file, data)

    def log_learning_curve(self, curve: list[dict[str, float]], artifact_file: str = "learning_curve.png") -> None:
        """The run's learning-curve PNG, drawn by the writer process (matplotlib stays out of this one)."""
        label = self.requested_name or "run"
        self._send("plot", {label: curve}, self.spec.tracking.model_dump(), artifact_file)

    def log_state_dict(self, state_dict: dict[str, Any], artifact_file: str) -> bytes:
        """Saves a ``state_dict`` with ``torch.save`` (load it with ``torch.load(weights_only=True)``);
        returns the bytes logged."""
        data = state_dict_bytes(state_dict)
        self.log_bytes(data, artifact_file)
        return data

    def log_policy_model(
        self,
        name: str,
        files: dict[str, bytes],
        io: dict,
        example: dict,
        register: tuple[str, float] | None,
        step: int,
    ) -> None:
        """The policy of ``files`` (run artifact name -> bytes) as the run's MLflow Model ``name``
        (:func:`pgtorchrl.record.logged_model.log_policy_model`); ``register``: ``(registered
        model name, final eval return)`` registers it and moves the ``champion`` alias if it beats
        the current one's; ``step``: the env frames it was trained for (its ``eval/`` metrics there
        are linked to it). Its URI, version and champion status come back as :attr:`models`."""
        self._send("model", name, files, io, example, register, step)

    @property
    def models(self) -> list[str]:
        """The writer's ``model NAME URI [models:/REGISTERED/VERSION champion|-]`` lines so far."""
        return [line.removeprefix("model ") for line in self._lines if line.startswith("model ")]
