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
from mlflow.pyfunc import PythonModel


class PolicyModel(PythonModel):
    """Loads the actor from the model's artifacts (state dicts and the resolved spec) and acts."""

    def load_context(self, context) -> None:
        from pgtorchrl.deploy.policy import DeployedPolicy
        from pgtorchrl.deploy.scoring_errors import in_scoring_server, install
        from pgtorchrl.experiments.loading import artifact_files

        if in_scoring_server():  # mlflow models serve: its own refusals in one line too
            install()

        self.policy = DeployedPolicy.from_files(
            artifact_files(context.artifacts, "the MLflow Model"), "the MLflow Model"
        )

    def predict(self, context, model_input, params=None):
        from pgtorchrl.deploy.policy import PolicyInputError
        from pgtorchrl.deploy.scoring_errors import PolicyRequestError

        deterministic = bool((params or {}).get("deterministic", True))
        try:
            return self.policy(model_input, deterministic)
        except PolicyInputError as err:
            raise PolicyRequestError(str(err)) from None


mlflow.models.set_model(PolicyModel())
