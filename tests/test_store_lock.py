"""Processes that open a new SQLite store at the same moment (two runs started together, a run
and ``pgtorchrl compare``, or several workers of one Optuna study: Optuna's way to parallelise
one): each creates it (an Alembic migration) in turn, and none fails with ``UNIQUE constraint
failed: alembic_version.version_num``."""

import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pgtorchrl.record.tracking import mlflow_client

OPEN_TOGETHER = """
import sys, time
from pathlib import Path
import mlflow.tracking, optuna.storages
from pgtorchrl.record.tracking import mlflow_client
from pgtorchrl.pipeline.search_space import TuneConfig
from pgtorchrl.experiments.tune import _study
folder, me, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for k in range(3):  # a race each time: three chances to collide, on each kind of store
    for kind in ("study", "mlflow"):
        (folder / f"ready-{kind}{k}-{me}").touch()
        deadline = time.time() + 60
        while len(list(folder.glob(f"ready-{kind}{k}-*"))) < n:  # all here: open a new store at once
            if time.time() > deadline:
                sys.exit("another process failed: it never came to the next store")
            time.sleep(0.001)
        uri = f"sqlite:///{folder}/{kind}{k}.db"
        if kind == "study":
            _study(TuneConfig(space={"optim.lr": {"uniform": [0.1, 0.2]}}), uri, "together")
        else:
            mlflow_client(uri).search_experiments()
"""


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
def test_processes_opening_new_stores_together_all_succeed(tmp_path):
    n = 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, str(tmp_path), str(k), str(n)], stderr=subprocess.PIPE, text=True
        )
        for k in range(n)
    ]
    errors = [proc.communicate(timeout=180)[1] for proc in procs]
    raised = [
        line for e in errors for line in e.splitlines() if "Error:" in line
    ]  # the exceptions, not their tracebacks
    assert [proc.returncode for proc in procs] == [0] * n, "\n".join(raised or errors)
    for k in range(3):
        assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/study{k}.db")] == [
            "together"
        ]
        assert [e.name for e in MlflowClient(f"sqlite:///{tmp_path}/mlflow{k}.db").search_experiments()] == ["Default"]


def test_a_store_whose_lock_cannot_be_made_is_still_read(tmp_path):
    """A store read where this process cannot write (a read-only share of someone's results)
    is read without a lock: no process can create a store there either."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).create_experiment("made before")
    (tmp_path / "mlflow.db.lock").mkdir()  # opening the lock file fails, as it does in a read-only folder
    assert "made before" in [e.name for e in mlflow_client(uri).search_experiments()]
