"""Shared fixtures: a temporary MLflow store, and a local MLflow server on 127.0.0.1 with a SQLite
store and an artifacts folder."""

import contextlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory):
    """An MLflow SQLite database with its tables created, once per test session: creating them
    (MLflow's schema migrations) costs each new store about 1.3 s, in every process that opens it first."""
    folder = tmp_path_factory.mktemp("empty_store")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).search_experiments()",
            f"sqlite:///{folder}/mlflow.db",
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    return folder / "mlflow.db"


@pytest.fixture
def store(tmp_path, monkeypatch, _empty_store):
    """A SQLite MLflow store in a temporary folder (also the working directory: artifacts go there):
    a copy of :func:`_empty_store` whose Default experiment keeps its artifacts under this folder,
    as a store created here would."""
    shutil.copy(_empty_store, tmp_path / "mlflow.db")
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db, db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (str(tmp_path / "mlruns" / "0"),)
        )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture
def server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
