"""The MLflow UI shows a fresh run: REST API checks, then the run page rendered in headless Chromium.

Needs Debian's ``chromium`` (``.ci/run`` installs it when missing); outside CI the test is
skipped on a machine without it.
"""

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from chromium import rendered, require_chromium
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def api(server, endpoint, **query):
    with urllib.request.urlopen(f"{server}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}", timeout=30) as r:
        return json.load(r)


def test_run_page_and_metric_chart_render(server, tmp_path):
    require_chromium()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgtorchrl",
            str(ROOT / "pipelines" / "vpg_cartpole.yaml"),
            "train.total_frames=512",
            "eval.every_frames=256",
            "eval.episodes=2",
            "eval.target_return=null",
            "tracking.run_name=browser-check",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": server},
    )
    assert proc.returncode == 0, proc.stderr
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("vpg-cartpole")
    (run,) = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id
    # the REST API: params, metric histories, artifacts
    data = api(server, "runs/get", run_id=run_id)["run"]["data"]
    assert {p["key"]: p["value"] for p in data["params"]}["env.env_id"] == "CartPole-v1"
    history = api(server, "metrics/get-history", run_id=run_id, metric_key="eval/return_mean")["metrics"]
    assert [m["step"] for m in history] == [256, 512]
    files = {f["path"] for f in api(server, "artifacts/list", run_id=run_id, path="model")["files"]}
    assert files == {"model/actor.pt", "model/critic.pt"}
    # the pages, rendered: the run page and its metric charts (the training view of MLflow 3.17)
    base = f"{server}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
    for page in (f"{base}?workflowType=machine_learning", f"{base}/model-metrics?workflowType=machine_learning"):
        # headless Chromium's virtual clock can run out before the page's API calls return (seen
        # on a loaded machine): a page gets three renders to show the run and its metric
        for _ in range(3):
            dom = rendered(page, tmp_path / "chromium")
            if "browser-check" in dom and "eval/return_mean" in dom:
                break
        assert "browser-check" in dom, page
        assert "eval/return_mean" in dom, page
