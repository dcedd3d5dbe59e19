"""``mlflow models serve`` of a policy's MLflow Model on loopback, for checks and load tests:
started, waited for (``GET /ping``), and stopped with its whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["served", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(model_uri: str, workers: int = 1, timeout: float = 120.0, env: dict | None = None) -> Iterator[str]:
    """Serves ``model_uri`` (``models:/NAME@ALIAS``) with this interpreter's ``mlflow models serve
    --env-manager local`` on 127.0.0.1 and yields its base URL once it answers; ``env``: the
    server's environment (default: this process's, so its ``MLFLOW_TRACKING_URI``). Raises
    ``RuntimeError`` if it exits or does not answer within ``timeout`` seconds."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    base = dict(env if env is not None else os.environ)
    # MLflow starts its server as `uvicorn ...` through bash: this interpreter's scripts come first
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    server = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)],
        env={**base, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers are stopped with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"mlflow models serve of {model_uri} exited with {server.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow models serve of {model_uri} did not answer in {timeout:.0f} s"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
