"""Processes that open a new SQLite store at the same moment: each creates it (an Alembic
migration) in turn, none fails with ``UNIQUE constraint failed: alembic_version.version_num``."""
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient

OPEN_TOGETHER = """
import sys, time
from pathlib import Path
import mlflow.tracking, optuna.storages
from pgtorchrl.record.tracking import mlflow_client
from pgtorchrl.spec.search_space import TuneConfig
from pgtorchrl.spec.tune import _study
folder, what, me, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
for store in range(3):  # a race each time: three chances to collide
    (folder / f"ready-{store}-{me}").touch()
    deadline = time.time() + 60
    while len(list(folder.glob(f"ready-{store}-*"))) < n:  # all here: open a new store at the same moment
        if time.time() > deadline:
            sys.exit("another process failed: it never came to the next store")
        time.sleep(0.001)
    uri = f"sqlite:///{folder}/{store}.db"
    if what == "study":  # Optuna's way to parallelise a study: several processes on one storage
        _study(TuneConfig(space={"optim.lr": {"uniform": [0.1, 0.2]}}), uri, "together")
    else:  # two runs started together, or a run and `pgtorchrl compare`
        mlflow_client(uri).search_experiments()
"""


@pytest.mark.parametrize("what", ["study", "mlflow"])
def test_processes_opening_a_new_store_together_all_succeed(tmp_path, what):
    n = 3
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_TOGETHER, str(tmp_path), what, str(k), str(n)],
                              stderr=subprocess.PIPE, text=True) for k in range(n)]
    errors = [proc.communicate(timeout=180)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * n, "\n".join(errors)
    for store in range(3):
        uri = f"sqlite:///{tmp_path}/{store}.db"
        if what == "study":
            assert [s.study_name for s in optuna.get_all_study_summaries(uri)] == ["together"]
        else:
            assert [e.name for e in MlflowClient(uri).search_experiments()] == ["Default"]
