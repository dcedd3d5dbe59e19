"""The bare-torch loops pgtorchrl's speed is measured against (``benchmarks/bare_ppo.py``,
``benchmarks/bare_vpg.py``) are honest: plain torch and gymnasium only, they learn, and they take
exactly as many optimizer steps as the pipelines they stand for."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
PIPELINES = {"bare_ppo": "ppo_halfcheetah", "bare_vpg": "vpg_halfcheetah"}
LEARNS = {  # a short run on InvertedPendulum-v5, where a few thousand frames already teach something
    "bare_ppo": ["--total-frames", "16384"],
    "bare_vpg": ["--total-frames", "40000", "--frames-per-batch", "1000", "--pi-lr", "3e-3"],
}
RUN = """
import json, sys
sys.path.insert(0, {folder!r})
import {name}
result = {name}.train({name}.parse({argv!r}))
foreign = sorted(m for m in sys.modules if m.split(".")[0] in ("pgtorchrl", "torchrl", "tensordict"))
print(json.dumps({{"returns": result["returns"], "actor_steps": result["actor_steps"],
                  "critic_steps": result["critic_steps"], "foreign": foreign}}))
"""


def bare(name: str, argv: list[str]) -> dict:
    code = RUN.format(folder=str(BENCHMARKS), name=name, argv=argv)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # tens of thousands of MuJoCo steps each
@pytest.mark.parametrize("name", LEARNS)
def test_each_bare_loop_learns_with_plain_torch_and_gymnasium_only(name):
    result = bare(name, ["--env-id", "InvertedPendulum-v5", *LEARNS[name]])
    assert result["foreign"] == []  # no pgtorchrl, TorchRL or tensordict behind the baseline's back
    returns = result["returns"]
    first, last = sum(returns[:20]) / 20, sum(returns[-20:]) / 20
    assert last > 3 * first, (first, last)


@pytest.mark.parametrize("name", PIPELINES)
def test_each_bare_loop_takes_as_many_optimizer_steps_as_its_pipeline(name, store):
    import pgtorchrl.trainers.trainer as trainer

    frames = {"bare_ppo": 4096, "bare_vpg": 8000}[name]  # two updates of each pipeline
    spec = load_spec(
        ROOT / "pipelines" / "mujoco" / f"{PIPELINES[name]}.yaml",
        [f"train.total_frames={frames}", "eval.episodes=0", "tracking.checkpoint_every_frames=null"],
    )
    p = build_pipeline(spec)
    counts = {"actor": 0, "critic": 0}
    for which, optim in (("actor", p.actor_optim), ("critic", p.critic_optim)):
        step = optim.step

        def counted(*args, _step=step, _which=which, **kwargs):
            counts[_which] += 1
            return _step(*args, **kwargs)

        optim.step = counted
    trainer.train(spec, pipeline=p)
    result = bare(name, ["--total-frames", str(frames)])
    assert counts["actor"] > 1 and counts["critic"] > 1
    assert (result["actor_steps"], result["critic_steps"]) == (counts["actor"], counts["critic"])
