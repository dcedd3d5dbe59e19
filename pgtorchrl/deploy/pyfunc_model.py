"""The MLflow Model of a pgtorchrl policy: MLflow's "models from code", so this file *is* the
model (``mlflow.pyfunc.log_model(python_model=<this file>)``, see
:mod:`pgtorchrl.record.logged_model`).

``predict`` takes observations (a numpy array, a DataFrame, or a dict of arrays by input name when
the policy reads several: the model's signature lists them) and returns one action per row, as
the gymnasium env takes it. Deterministic by default (the mode); ``params={"deterministic":
False}`` samples. A request the policy cannot act on is an ``INVALID_PARAMETER_VALUE`` error (HTTP
400 from ``mlflow models serve``) with one line naming the problem and the expected input.
"""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel


class PolicyRequestError(MlflowException):
    """A request the policy cannot act on: ``INVALID_PARAMETER_VALUE`` (HTTP 400 from ``mlflow
    models serve``), its message one line naming the problem and the expected input.

    MLflow's scoring server rewrites the message of an error raised by ``predict`` as ``"Failed to
    predict data '<the whole request>'. \\nError: <message>"`` (``e.message = ...``, in
    ``mlflow.pyfunc.scoring_server.invocations``): two lines, the first as long as the request. This
    error's ``message`` keeps its own line and ignores that rewrite; everything else about it is
    MLflow's. Requests that MLflow's own signature check refuses (a wrong shape or dtype, an empty
    batch) are MLflow's errors, worded by MLflow.
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


class PolicyModel(PythonModel):
    """Loads the actor from the model's artifacts (state dicts and the resolved spec) and acts."""

    def load_context(self, context) -> None:
        from pgtorchrl.deploy.policy import DeployedPolicy
        from pgtorchrl.experiments.loading import artifact_files

        self.policy = DeployedPolicy.from_files(
            artifact_files(context.artifacts, "the MLflow Model"), "the MLflow Model"
        )

    def predict(self, context, model_input, params=None):
        from pgtorchrl.deploy.policy import PolicyInputError

        deterministic = bool((params or {}).get("deterministic", True))
        try:
            return self.policy(model_input, deterministic)
        except PolicyInputError as err:
            raise PolicyRequestError(str(err)) from None


mlflow.models.set_model(PolicyModel())
