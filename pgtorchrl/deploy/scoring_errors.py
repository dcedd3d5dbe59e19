"""One line for every request ``mlflow models serve`` refuses before the policy sees it.

MLflow's scoring server checks a request against the model's signature and its JSON before
``predict`` runs, and words what it refuses its own way: ``"Failed to predict data '<the whole
request>'. \\nError: Failed to enforce schema of data '<the request again>' with schema ..."`` for a
wrong shape or an empty batch, the whole malformed body after ``"\\nInput: \\n"`` for bad JSON, a
paragraph on MLflow 2.0's protocol change for a body without ``inputs``. None of those is one line,
and a 100k-row request comes back in its error. The policy's own checks
(:meth:`~pgtorchrl.deploy.policy.DeployedPolicy.check`) word each of those problems in one line
naming the expected input; this module gives MLflow's refusals that wording.

:func:`install` wraps ``mlflow.pyfunc.scoring_server.invocations`` (the function the server's
``/invocations`` route calls, looked up at each request), only inside a scoring server process
serving a pgtorchrl policy (``PolicyModel.load_context`` calls it there). The wrapper changes no
status code and no answer to a good request: when MLflow refuses a request, the request is read
again and put through the policy's checks; their line becomes the error's message. Where the
policy's checks pass what MLflow refused (a ``params`` value, a ``dataframe_split`` body), MLflow's
own message is kept, on one line, without the request. Tested against a real ``mlflow models
serve`` (``tests/test_deploy.py``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

__all__ = ["PolicyRequestError", "install", "one_line", "SERVER_MODEL_PATH"]

SERVER_MODEL_PATH = "__pyfunc_model_path__"
"""The environment variable MLflow's scoring server reads its model from
(``mlflow.pyfunc.scoring_server._SERVER_MODEL_PATH``): set only in a serving process."""

_REQUEST_PREFIX = re.compile(r"^Failed to predict data '.*?'\. \nError: ", re.S)
_SCHEMA_PREFIX = re.compile(r"^Failed to enforce schema of data '.*?' with schema '.*?'\. Error: ", re.S)
FORMATS = {"inputs", "instances", "dataframe_split", "dataframe_records"}
"""The keys a JSON request may carry its data under (MLflow's scoring protocol)."""
MAX_LENGTH = 300
"""The longest message kept from MLflow (its wording can embed data)."""


class PolicyRequestError(MlflowException):
    """A request the policy cannot act on: ``INVALID_PARAMETER_VALUE`` (HTTP 400 from ``mlflow
    models serve``), its message one line naming the problem and the expected input.

    MLflow's scoring server rewrites the message of an error raised by ``predict`` as ``"Failed to
    predict data '<the whole request>'. \\nError: <message>"`` (``e.message = ...``, in
    ``mlflow.pyfunc.scoring_server.invocations``): two lines, the first as long as the request. This
    error's ``message`` keeps its own line and ignores that rewrite; everything else about it is
    MLflow's. Requests that MLflow's own checks refuse get one line from :func:`install`.
    """

    def __init__(self, line: str):
        self._line = line
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property  # MlflowException's plain attribute, made read-only
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        pass  # the scoring server's rewrite (see above); the one line stays


def in_scoring_server() -> bool:
    """Whether this process is MLflow's scoring server (``mlflow models serve``)."""
    return SERVER_MODEL_PATH in os.environ


def install() -> None:
    """Makes the scoring server of this process answer its refusals in one line (once)."""
    from mlflow.pyfunc import scoring_server

    original = scoring_server.invocations
    if getattr(original, "pgtorchrl_one_line", False):
        return

    @functools.wraps(original)
    def invocations(data, content_type, model, input_schema):
        try:
            return original(data, content_type, model, input_schema)
        except PolicyRequestError:
            raise  # the policy's own line already
        except MlflowException as err:
            err.message = one_line(err.message, data, _policy(model))
            raise

    invocations.pgtorchrl_one_line = True  # type: ignore[attr-defined]
    scoring_server.invocations = invocations


def _policy(model: Any):
    """The :class:`~pgtorchrl.deploy.policy.DeployedPolicy` behind a served pyfunc model, or ``None``."""
    try:
        return getattr(model.unwrap_python_model(), "policy", None)
    except Exception:  # noqa: BLE001  # not a python_function model of this kind: MLflow's wording, made one line
        return None


def one_line(message: str, body: Any, policy) -> str:
    """The one line to answer instead of MLflow's ``message`` about the request ``body``: the
    policy's own check of it where that finds the problem, else MLflow's message without the
    request it quotes."""
    if policy is not None:
        found = _policy_says(body, policy)
        if found:
            return found
    inner = _SCHEMA_PREFIX.sub("", _REQUEST_PREFIX.sub("", message))
    inner = inner.split("\nInput: \n")[0]  # a malformed body, quoted after the parse error
    inner = " ".join(inner.split())
    inner = inner if len(inner) <= MAX_LENGTH else inner[: MAX_LENGTH - 3] + "..."
    return inner if policy is None else f"{inner.rstrip('.')}: expected {policy.expected()}"


def _policy_says(body: Any, policy) -> str | None:
    """What the policy's checks say of a JSON request ``body``, or ``None`` where they accept it."""
    from pgtorchrl.deploy.policy import PolicyInputError

    send = f'send {{"inputs": ...}} with {policy.expected()}'
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as err:
        return f"the request is not JSON ({err}): {send}"
    if not isinstance(request, dict) or not FORMATS & set(request):
        keys = sorted(request) if isinstance(request, dict) else type(request).__name__
        return f"the request has no 'inputs' (got {keys}): {send}"
    inputs = request.get("inputs", request.get("instances"))
    if inputs is None:
        return None  # a DataFrame body: MLflow's wording
    try:
        policy.check(inputs)
    except PolicyInputError as err:
        return str(err)
    return None
