"""A run's policy as an MLflow Model, and the model registry's ``champion`` alias: the writer
process's side (:mod:`pgtorchrl.record.mlflow_writer`), where MLflow lives.

The model is MLflow's "models from code": :data:`MODEL_CODE` (``pgtorchrl/deploy/pyfunc_model.py``)
is the model, the run's files are its artifacts (the resolved spec, the actor's state dict, the
env transforms' statistics: :data:`~pgtorchrl.config.artifacts.POLICY_MODEL_FILES`), and the
pgtorchrl package travels with it as code (``code_paths``), so ``mlflow models serve`` needs
only the pinned requirements. Nothing is pickled: loading rebuilds the actor from the spec and
``torch.load(weights_only=True)``\\ s its weights (``../shared/REFERENCE.md``: a pickled
``ProbabilisticActor`` does not load through ``mlflow.pyfunc``).
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from pgtorchrl.config.artifacts import POLICY_MODEL_FILES
from pgtorchrl.record.store_lock import store_lock

__all__ = ["MODEL_CODE", "CHAMPION", "log_policy_model", "register_policy", "requirements"]

PACKAGE = Path(__file__).resolve().parents[1]
MODEL_CODE = PACKAGE / "deploy" / "pyfunc_model.py"
"""The model's code (a path: the writer never imports it, nor torch)."""

CHAMPION = "champion"
"""The alias of the registered version with the best final evaluation."""

EVAL_TAG = "eval_return"
"""The version tag holding its run's final ``eval/return_mean``."""


@functools.cache
def requirements() -> tuple[str, ...]:
    """pgtorchrl's own dependencies, each pinned to the version installed here (torch==2.13.0
    among them, from PyTorch's CPU wheel index)."""
    pins = ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    for line in metadata.requires("pgtorchrl") or []:
        if "extra ==" in line:
            continue
        name = re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]
        pins.append(f"{name}=={metadata.version(name)}")
    return tuple(pins)


def _signature(io: dict):
    """``io``: ``{"inputs": [(name, dtype, shape), ...], "outputs": [...]}`` (one row's shapes).
    One input is an unnamed tensor (``{"inputs": [[...], ...]}``), several are named (a recurrent
    policy's ``is_init`` and hidden states among them); the same for the outputs (``action``, a
    recurrent policy's next states). MLflow checks a request's dtypes and shapes against it before
    the policy checks its values."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    def schema(arrays) -> Schema:
        single = len(arrays) == 1
        return Schema(
            [TensorSpec(np.dtype(dtype), (-1, *shape), None if single else name) for name, dtype, shape in arrays]
        )

    inputs, outputs = schema(io["inputs"]), schema(io["outputs"])
    params = ParamSchema([ParamSpec("deterministic", "boolean", True)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_policy_model(
    client,
    run_id: str,
    name: str,
    files: dict[str, bytes],
    io: dict,
    example: dict,
    tags: dict[str, str],
    step: int = 0,
) -> str:
    """Logs the policy of ``files`` (by run artifact name) as the MLflow Model ``name`` of run
    ``run_id`` (a ``LoggedModel`` linked to it, READY, as its output at ``step``: the env frames
    it was trained for, whose ``eval/`` metrics are linked to it as MLflow links a model's metrics),
    with its signature, ``example`` (an input example: arrays by input name) and pinned
    requirements; returns its ``models:/`` URI.

    Built with MLflow's public steps (``pyfunc.save_model``, then ``create_logged_model``,
    ``log_model_artifacts``, ``finalize_logged_model``, ``log_outputs``) rather than
    ``pyfunc.log_model``, which loads the model back and predicts the example before it returns:
    torch, TorchRL and the run's env imported into this writer, 4.5 s added to every run
    (``vpg_cartpole`` at 4096 frames: 9.3-11.6 s against 4.9-5.0 s without a model, on this
    2-core machine). ``tests/test_deploy.py`` loads and serves the model instead."""
    import mlflow
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    example_value = next(iter(example.values())) if len(example) == 1 else example
    run = client.get_run(run_id)
    logged = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id, tags=tags)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            artifacts = {}
            for artifact, data in files.items():
                path = Path(tmp) / Path(artifact).name
                path.write_bytes(data)
                artifacts[POLICY_MODEL_FILES[artifact]] = str(path)
            local = Path(tmp) / "model"
            mlflow.pyfunc.save_model(
                path=str(local),
                python_model=str(MODEL_CODE),
                artifacts=artifacts,
                code_paths=[str(PACKAGE)],
                signature=_signature(io),
                input_example=example_value,
                pip_requirements=list(requirements()),
                mlflow_model=Model(run_id=run_id, model_id=logged.model_id),
            )
            for cache in local.rglob("__pycache__"):  # the package's compiled files: not part of the model
                shutil.rmtree(cache, ignore_errors=True)
            client.log_model_artifacts(logged.model_id, str(local))
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=step)])
    _link_metrics(client, run, logged.model_id, step)
    return f"models:/{logged.model_id}"


def _link_metrics(client, run, model_id: str, step: int) -> None:
    """The run's ``eval/`` metrics at ``step``, logged again with ``model_id`` (what
    ``Model.log`` does for every metric of its step): the model's page shows its evaluation.
    ``run``: as read before the model was logged (its metrics were all written by then)."""
    from mlflow.entities import Metric

    run_id = run.info.run_id
    linked = [
        Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id, run_id=run_id)
        for key in run.data.metrics
        if key.startswith("eval/")
        for m in client.get_metric_history(run_id, key)
        if m.step == step and m.model_id is None
    ]
    if linked:
        client.log_batch(run_id, metrics=linked)


def register_policy(client, uri: str, model_uri: str, name: str, eval_return: float) -> tuple[str, bool]:
    """Registers ``model_uri`` as a new version of ``name`` with ``eval_return`` as its
    ``eval_return`` tag; the ``champion`` alias moves to it only if that beats the current
    champion's (or there is none). Returns the version and whether it is the champion. On a
    SQLite store the comparison and the move hold the store's lock, so two runs ending together
    cannot both take the alias on stale figures."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    with store_lock(uri):
        version = mlflow.register_model(model_uri, name, await_registration_for=0).version
        client.set_model_version_tag(name, version, EVAL_TAG, repr(float(eval_return)))
        try:
            current = client.get_model_version_by_alias(name, CHAMPION)
            best = float(current.tags.get(EVAL_TAG, "-inf"))
        except MlflowException:  # no champion yet
            best = -math.inf
        takes = float(eval_return) > best
        if takes:
            client.set_registered_model_alias(name, CHAMPION, version)
    return str(version), takes
