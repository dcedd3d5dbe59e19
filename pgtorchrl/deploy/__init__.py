"""Trained policies as deployable models: a numpy-in, numpy-out policy, the MLflow Model
(``mlflow.pyfunc``) that wraps it, and the model registry's champion alias."""
