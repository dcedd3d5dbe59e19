"""A bounded load check of a served policy: `mlflow models serve` on loopback against a bare
onnxruntime call on the same observations.

Trains nothing: give it a policy's MLflow Model in the current store (MLFLOW_TRACKING_URI).
It starts `mlflow models serve -m MODEL --env-manager local` on 127.0.0.1, sends a fixed number
of POST /invocations requests (one observation row each, by default) from N concurrent clients
with a time limit, and prints requests/s and p50/p99 latency; then the same observations, one
call each, through the policy exported to ONNX and run by onnxruntime in this process.

    MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db python benchmarks/serve_load.py models:/cartpole@champion
    python benchmarks/serve_load.py models:/cartpole@champion --clients 8 --requests 2000 --rows 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # MLflow's download bars


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(1000 * s for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))]


def _observations(policy, count: int, rows: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        batch = {}
        for spec in policy.io.inputs:
            values = rng.normal(size=(rows, *spec.shape))
            batch[spec.name] = (
                values.astype(spec.dtype) if spec.dtype.startswith("float") else (values > 0).astype(spec.dtype)
            )
        batches.append(batch)
    return batches


def serve_load(model: str, clients: int, requests: int, rows: int, limit_s: float) -> dict:
    from pgtorchrl.deploy.policy import DeployedPolicy
    from pgtorchrl.deploy.serving import served

    policy = DeployedPolicy.load(model)
    batches = _observations(policy, requests, rows)
    with served(model) as url:
        bodies = [
            json.dumps(
                {"inputs": next(iter(b.values())).tolist() if len(b) == 1 else {k: v.tolist() for k, v in b.items()}}
            ).encode()
            for b in batches
        ]
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()
        stop_at = time.monotonic() + limit_s

        def send(body: bytes) -> None:
            nonlocal errors
            if time.monotonic() > stop_at:
                return
            request = urllib.request.Request(
                f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                ok = response.status == 200
            except OSError:
                ok = False
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed) if ok else None
                errors += not ok

        for body in bodies[: min(20, len(bodies))]:  # warm-up, not counted
            send(body)
        latencies.clear()
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, bodies))
        wall = time.perf_counter() - start
    p50, p99 = _percentiles(latencies)
    served = {
        "requests": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "rps": len(latencies) / wall,
        "p50_ms": p50,
        "p99_ms": p99,
    }

    import onnxruntime

    from pgtorchrl.deploy.export import export_policy

    with tempfile.TemporaryDirectory() as tmp:
        session = onnxruntime.InferenceSession(str(export_policy(policy, Path(tmp) / "p.onnx", "onnx")))
        for batch in batches[:20]:
            session.run(None, batch)
        calls = []
        start = time.perf_counter()
        for batch in batches:
            t = time.perf_counter()
            session.run(None, batch)
            calls.append(time.perf_counter() - t)
        bare_wall = time.perf_counter() - start
    p50, p99 = _percentiles(calls)
    bare = {"requests": len(calls), "wall_s": bare_wall, "rps": len(calls) / bare_wall, "p50_ms": p50, "p99_ms": p99}
    return {"served": served, "onnxruntime": bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a policy's MLflow Model, e.g. models:/cartpole@champion")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--requests", type=int, default=1000, help="requests in all (default 1000)")
    parser.add_argument("--rows", type=int, default=1, help="observation rows per request (default 1)")
    parser.add_argument("--limit-s", type=float, default=120.0, help="stop sending after this many seconds")
    args = parser.parse_args()
    result = serve_load(args.model, args.clients, args.requests, args.rows, args.limit_s)
    s, b = result["served"], result["onnxruntime"]
    print(f"model {args.model}: {args.requests} requests of {args.rows} row(s), {args.clients} clients, loopback")
    print(
        f"  mlflow models serve  {s['rps']:8.1f} requests/s  p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms"
        f"  ({s['requests']} ok, {s['errors']} errors, {s['wall_s']:.1f} s)"
    )
    print(
        f"  bare onnxruntime     {b['rps']:8.1f} calls/s     p50 {b['p50_ms']:7.2f} ms  p99 {b['p99_ms']:7.2f} ms"
        "  (one call each, in this process)"
    )


if __name__ == "__main__":
    main()
