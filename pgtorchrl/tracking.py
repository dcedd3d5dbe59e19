"""MLflow tracking of a pipeline run: params, batched metrics, artifacts, and a final status.

The run is a context manager: it ends FINISHED on success, KILLED on Ctrl-C/SIGTERM and FAILED
(with the error as the ``error`` tag) on an exception, so no run is ever left RUNNING. The
MLflow calls themselves happen in :mod:`pgtorchrl.mlflow_writer`, a child process.
"""
from __future__ import annotations

import io
import os
import subprocess
import tempfile
import pickle
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pgtorchrl.spec import Spec, flatten

__all__ = ["DEFAULT_TRACKING_URI", "resolve_tracking_uri", "TrackedRun", "TrackingError", "package_versions"]

#: The default store: SQLite under the top-level ``mlruns/`` folder, artifacts beside it.
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
PACKAGES = ("pgtorchrl", "torch", "torchrl", "tensordict", "gymnasium", "mlflow", "numpy")


def resolve_tracking_uri(spec_uri: str | None) -> str:
    """The spec's ``tracking.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the default."""
    uri = spec_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def package_versions() -> dict[str, str]:
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
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if sha.returncode:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _child_env() -> dict[str, str]:
    """This process's environment, with pgtorchrl importable even from an uninstalled checkout."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


class TrackingError(RuntimeError):
    """The MLflow writer process failed (store unreachable, disk full ...)."""


class TrackedRun:
    """One MLflow run for one pipeline run, written by a separate writer process.

    ``import mlflow``, the store's set-up and every write run in a child process
    (``python -m pgtorchrl.mlflow_writer``) on another core, fed in order through a pipe, so
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
        self.run_name: str | None = None
        self.experiment_id: str | None = None
        self._proc: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._opened = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    def start_writer(self) -> "TrackedRun":
        """Starts the writer process early: it imports MLflow and prepares the store and the
        experiment while this process builds the pipeline. No run exists until :meth:`__enter__`."""
        if self._proc is None:
            uri = resolve_tracking_uri(self.spec.tracking.tracking_uri)
            self._stderr = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pgtorchrl.mlflow_writer", uri, self.spec.experiment],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=_child_env(),
                start_new_session=True,  # Ctrl-C reaches the trainer, which then ends the run itself
            )
            self._reader = threading.Thread(target=self._read, name="pgtorchrl-mlflow-reader", daemon=True)
            self._reader.start()
        return self

    def discard(self) -> None:
        """Stops a writer whose run was never opened (the pipeline failed to build)."""
        if self._proc is not None and self.run_id is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)

    def __enter__(self) -> "TrackedRun":
        self.start_writer()
        if self.resume_run_id is not None:
            self._send("reopen", self.resume_run_id, self.extra_tags)
            return self
        resolved = yaml.safe_dump(self.spec.model_dump(mode="json"), sort_keys=False)
        texts = {"spec/resolved.yaml": resolved}  # the writer adds environment/requirements.txt
        if self.spec_text is not None:
            texts["spec/given.yaml"] = self.spec_text
        tags = {f"version.{k}": v for k, v in package_versions().items()}
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        tags.update(self.extra_tags)
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
            self._send("end", status, error)
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self._proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._reader.join(timeout=10)
        problem = self._problem()
        if problem and exc_type is None:
            raise TrackingError(problem)

    def _problem(self) -> str | None:
        errors = [line[6:] for line in self._lines if line.startswith("error ")]
        if errors:
            return f"MLflow tracking failed: {errors[0]}"
        if self._proc.poll() not in (0, None) or "ended" not in self._lines:
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-1:]
            return f"the MLflow writer exited with {self._proc.returncode}: {' '.join(tail) or 'no message'}"
        return None

    def _read(self) -> None:
        for raw in self._proc.stdout:
            line = raw.decode().rstrip("\n")
            self._lines.append(line)
            if line.startswith("opened "):
                _, self.run_id, self.experiment_id, self.run_name = line.split(" ", 3)
                self._opened.set()
        self._opened.set()  # the writer is gone: nobody waits forever

    def _send(self, *message: Any) -> None:
        if any(line.startswith("error ") for line in self._lines):
            raise TrackingError(self._problem())
        pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc.stdin.flush()

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

    def log_text(self, text: str, artifact_file: str) -> None:
        self.log_bytes(text.encode(), artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        self._send("artifact", artifact_file, data)

    def log_learning_curve(self, curve: list[dict[str, float]], artifact_file: str = "learning_curve.png") -> None:
        """The run's learning-curve PNG, drawn by the writer process (matplotlib stays out of this one)."""
        label = self.requested_name or "run"
        self._send("plot", {label: curve}, self.spec.tracking.model_dump(), artifact_file)

    def log_state_dict(self, state_dict: dict[str, Any], artifact_file: str) -> None:
        """Saves a ``state_dict`` with ``torch.save``; load it with ``torch.load(weights_only=True)``."""
        import torch

        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().clone() for k, v in state_dict.items()}, buffer)
        self.log_bytes(buffer.getvalue(), artifact_file)
