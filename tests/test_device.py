"""``device:`` puts the whole pipeline (env, actor, critic, advantage, loss) on one device.

On a machine without CUDA, ``device: cuda`` is a one-line error that opens no run; on one with
CUDA (the GPU machine), the CUDA tests below train on it.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec

ROOT = Path(__file__).resolve().parents[1]
TORCH_CARTPOLE = ROOT / "pipelines" / "vpg_cartpole_torch.yaml"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error_and_opens_no_run(store):
    proc = subprocess.run(
        [sys.executable, "-m", "pgtorchrl", str(TORCH_CARTPOLE), "device=cuda"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pgtorchrl: error: {TORCH_CARTPOLE}: device: 'cuda', but torch {torch.__version__} sees no CUDA device "
        "on this machine: set device: cpu"
    ]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(load_spec(TORCH_CARTPOLE).experiment)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_ray_collection_needs_device_cpu():
    from pgtorchrl.config.spec_file import SpecError

    with pytest.raises(SpecError, match="device: Ray workers collect on CPU: set device: cpu with a Ray collector"):
        load_spec(
            ROOT / "pipelines" / "vpg_cartpole.yaml", ["device=cuda", "collector={backend: ray, frames_per_batch: 256}"]
        )


def on(module, device):
    return {p.device.type for p in module.parameters()} == {device}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=cuda)])
@pytest.mark.parametrize("pipeline", ["vpg_cartpole_torch.yaml", "short_corridor_baseline.yaml", "vpg_cartpole.yaml"])
def test_every_stage_runs_on_the_spec_device(device, pipeline):
    spec = load_spec(ROOT / "pipelines" / pipeline, [f"device={device}", "sweep=null"])
    p = build_pipeline(spec)
    assert p.env.device.type == device and on(p.actor, device)
    assert p.critic is None or on(p.critic, device)
    batch = next(iter(p.make_collector()))
    assert {batch.get(k).device.type for k in ("observation", "action", ("next", "reward"))} == {device}
    p.advantage(batch)
    assert batch.get("advantage").device.type == device
    losses = p.loss(batch)
    assert all(v.device.type == device for k, v in losses.items() if k.startswith("loss_"))


@cuda
def test_torch_cartpole_trains_on_cuda(store):
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(TORCH_CARTPOLE, ["device=cuda", "train.total_frames=20000", "eval.episodes=4"])
    result = train(spec)
    assert MlflowClient(store).get_run(result.run_id).info.status == "FINISHED"
    assert result.eval_return is not None and result.frames >= 20000
