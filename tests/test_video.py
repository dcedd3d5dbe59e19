"""``pgtorchrl eval RUN --video`` on image envs: the episode is played through the run's own env
(its preprocessing: Atari's frame stack, MinAtar's bool frames) and rendered, one frame a step,
small frames enlarged, and logged as a GIF with the game's own return."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pgtorchrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "atari": ("ppo_atari_breakout", "ale_py", (210, 160)),
    "minatar": ("ppo_minatar_breakout", "minatar", (160, 160)),  # 10x10 enlarged 16 times
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_video_plays_the_runs_own_env_and_logs_a_gif(store, capsys, case):
    pipeline, package, frame_size = CASES[case]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"needs {package}")
    import imageio.v2 as imageio

    path = ROOT / "pipelines" / f"{pipeline}.yaml"
    tiny = ["env.num_envs=2", "collector.frames_per_batch=64", "train.total_frames=128", "eval.episodes=0"]
    assert main([str(path), *tiny]) == 0
    run_id = capsys.readouterr().out.strip().split()[-1]
    assert main(["eval", run_id, "--episodes", "1", "--video"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"video/episode.gif: (\d+) frames, return (\S+), logged", out)
    assert match, out
    client = MlflowClient(store)
    gif = imageio.mimread(client.download_artifacts(run_id, "video/episode.gif"))
    assert 1 < len(gif) <= (int(match.group(1)) + 1) // 2  # every other frame (GIF merges repeated ones)
    assert np.asarray(gif[0]).shape[:2] == frame_size
    evaluated = float(re.search(r"eval/return_mean=(\S+)", out).group(1))
    assert float(match.group(2)) == pytest.approx(evaluated)  # the same deterministic game, the same score
