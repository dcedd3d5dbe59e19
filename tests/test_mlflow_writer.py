"""The MLflow writer process's batching: metrics share log_batch calls, nothing reordered or lost."""

import queue

from pgtorchrl.record import mlflow_writer
from pgtorchrl.record.mlflow_writer import _END_OF_INPUT, _coalesced


def _queue(*messages) -> queue.Queue:
    q: queue.Queue = queue.Queue()
    for message in messages:
        q.put(message)
    return q


def test_waiting_metrics_share_one_batch_and_other_messages_keep_their_place():
    q = _queue(
        ("metrics", {"a": 1.0}, 1, 10),
        ("metrics", {"a": 2.0, "b": 0.5}, 2, 20),
        ("tag", "k", "v"),
        ("metrics", {"a": 3.0}, 3, 30),
        ("end", "FINISHED", None),
        _END_OF_INPUT,
    )
    out = _coalesced(q)
    assert next(out) == ("metrics", [({"a": 1.0}, 1, 10), ({"a": 2.0, "b": 0.5}, 2, 20)])
    assert next(out) == ("tag", "k", "v")
    assert next(out) == ("metrics", [({"a": 3.0}, 3, 30)])  # the run's end sends what waits
    assert next(out) == ("end", "FINISHED", None)
    assert next(out) is _END_OF_INPUT


def test_a_batch_stops_at_mlflows_limit_and_after_the_wait(monkeypatch):
    monkeypatch.setattr(mlflow_writer, "_BATCH_SECONDS", 0.05)
    many = {f"m{i}": float(i) for i in range(400)}
    out = _coalesced(_queue(*[("metrics", many, step, 0) for step in range(5)]))
    # whole messages: the third takes the batch past 1000 metrics and closes it
    assert [row[1] for row in next(out)[1]] == [0, 1, 2]
    assert [row[1] for row in next(out)[1]] == [3, 4]  # nothing more came within the wait
