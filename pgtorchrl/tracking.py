"""MLflow tracking of a pipeline run: params, batched metrics, artifacts, and a final status.

The run is a context manager: it ends FINISHED on success, KILLED on Ctrl-C/SIGTERM and FAILED
(with the error as the ``error`` tag) on an exception, so no run is ever left RUNNING.
"""
from __future__ import annotations

import io
import os
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pgtorchrl.spec import Spec, flatten

__all__ = ["DEFAULT_TRACKING_URI", "resolve_tracking_uri", "TrackedRun", "package_versions"]

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


class TrackedRun:
    """One MLflow run for one pipeline run.

    Args:
        spec: the validated spec (its flattened fields become the run's params).
        spec_text: the spec file as the user wrote it (logged as ``spec/given.yaml``).
    """

    def __init__(self, spec: Spec, spec_text: str | None = None):
        self.spec = spec
        self.spec_text = spec_text
        self.run_id: str | None = None
        self._client = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "TrackedRun":
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = resolve_tracking_uri(self.spec.tracking.tracking_uri)
        mlflow.set_tracking_uri(uri)
        self._client = MlflowClient(uri)
        experiment = mlflow.set_experiment(self.spec.experiment)
        tags = {f"version.{k}": v for k, v in package_versions().items()}
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        run = self._client.create_run(experiment.experiment_id, run_name=self.spec.tracking.run_name, tags=tags)
        self.run_id = run.info.run_id
        self.run_name = run.info.run_name
        self.experiment_id = experiment.experiment_id
        try:
            self._log_spec()
        except BaseException:
            self._end("FAILED")
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._end("FINISHED")
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            self._end("KILLED")
        else:
            self.set_tag("error", f"{exc_type.__name__}: {exc}"[:5000])
            self._end("FAILED")

    def _end(self, status: str) -> None:
        self._client.set_terminated(self.run_id, status=status)

    # -- logging ---------------------------------------------------------------------------------
    def _log_spec(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in flatten(self.spec).items()]
        for i in range(0, len(params), 100):  # MLflow's log_batch limit is 100 params a call
            self._client.log_batch(self.run_id, params=params[i : i + 100])
        resolved = yaml.safe_dump(self.spec.model_dump(mode="json"), sort_keys=False)
        self.log_text(resolved, "spec/resolved.yaml")
        if self.spec_text is not None:
            self.log_text(self.spec_text, "spec/given.yaml")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """All of one iteration's metrics in one call (one round trip to the store)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def set_tag(self, key: str, value: str) -> None:
        self._client.set_tag(self.run_id, key, value)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_state_dict(self, state_dict: dict[str, Any], artifact_file: str) -> None:
        """Saves a ``state_dict`` with ``torch.save``; load it with ``torch.load(weights_only=True)``."""
        import torch

        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        self.log_bytes(buffer.getvalue(), artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        path = Path(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            local.write_bytes(data)
            self._client.log_artifact(self.run_id, str(local), str(path.parent) if path.parent != Path(".") else None)
