"""Tracking on a shared MLflow server: a pipeline run found through the server's API."""

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_is_tracked_on_a_shared_server(server, tmp_path):
    workdir = tmp_path / "client"
    workdir.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgtorchrl",
            str(ROOT / "pipelines" / "vpg_cartpole.yaml"),
            "train.total_frames=512",
            "eval.every_frames=null",
            "eval.episodes=2",
            "eval.target_return=null",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "MLFLOW_TRACKING_URI": server},
    )
    assert proc.returncode == 0, proc.stderr
    assert not (workdir / "mlruns").exists()  # nothing written locally: all went to the server
    client = MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("vpg-cartpole").experiment_id])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_actor")] == [256, 512]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {"model/actor.pt", "model/critic.pt"}
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert any((tmp_path / "artifacts").rglob("actor.pt"))  # stored by the server, under its destination
