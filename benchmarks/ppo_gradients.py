"""PPO's gradients by hand (loss ``ppo``, ``analytic_gradients: true``) against autograd's
(``analytic_gradients: false``) on ``pipelines/mujoco/ppo_hopper.yaml``: what they cost and how far
apart the runs go.

1. Time: one 64-sample minibatch's ``ClipPPOLoss.forward_backward`` (HalfCheetah-v5's shapes,
   (64, 64) tanh networks), and one whole update of a collected 2048-frame batch (10 epochs x 32
   minibatches: the loss, the gradient clips, the two Adam steps), medians of alternated repeats,
   1 thread.
2. Learning: the same seed trained 10 iterations (20,480 frames) each way, every iteration's
   metrics side by side. The two compute the same gradients up to float rounding, so the first
   iterations agree to about 7 digits, and the difference then grows as any change of
   floating-point order does in RL training (the trajectories part within a few iterations).

    python benchmarks/ppo_gradients.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines" / "mujoco" / "ppo_hopper.yaml"
QUIET = ["eval.episodes=0", "tracking.checkpoint_every_frames=null", "tracking.log_models=false"]
SHOWN = ["train/loss_objective", "train/loss_critic", "train/grad_norm", "rollout/episode_return"]


def minibatch_us(repeats: int = 7, calls: int = 200) -> dict[str, float]:
    from tensordict import TensorDict
    from torchrl.data import Bounded, Unbounded

    from pgtorchrl.modules.models import LOG_PROB_KEY, make_critic, make_gaussian_actor
    from pgtorchrl.objectives.ppo import ClipPPOLoss

    torch.manual_seed(0)
    actor = make_gaussian_actor(17, Bounded(-1.0, 1.0, shape=(6,)), hidden_sizes=[64, 64], init_log_std=0.0)
    critic = make_critic(Unbounded(17), hidden_sizes=[64, 64])
    with torch.no_grad():
        batch = critic(actor(TensorDict({"observation": torch.randn(64, 17)}, [64])))
    batch["advantage"], batch["value_target"] = torch.randn(64, 1), torch.randn(64, 1)
    kwargs = dict(clip_epsilon=0.2, entropy_bonus=False, critic_coeff=0.5, loss_critic_type="l2")
    kwargs.update(normalize_advantage=True, clip_value=0.2, functional=False)
    losses = {}
    for analytic in (False, True):
        losses[analytic] = ClipPPOLoss(actor, critic, analytic_gradients=analytic, **kwargs)
        losses[analytic].set_keys(sample_log_prob=LOG_PROB_KEY)
    params = [*actor.parameters(), *critic.parameters()]

    def run(loss, statistics_: bool) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            for p in params:
                p.grad = None
            loss.forward_backward(batch, statistics=statistics_)
        return (time.perf_counter() - start) / calls * 1e6

    cases = {
        "autograd": (losses[False], True),
        "by hand": (losses[True], True),
        "by hand, no stats": (losses[True], False),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (loss, stats) in cases.items():
            times[name].append(run(loss, stats))
    return {name: statistics.median(t) for name, t in times.items()}


def update_ms(analytic: bool, repeats: int = 3) -> float:
    from pgtorchrl import build_pipeline, load_spec
    from pgtorchrl.trainers import trainer

    spec = load_spec(PIPELINE, [*QUIET, "train.total_frames=4096", f"loss.analytic_gradients={analytic}"])
    p = build_pipeline(spec)
    batch = next(iter(p.make_collector()))
    with torch.no_grad():
        p.advantage(batch)
    trainer.update(p, batch, 1, batch.numel())  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.update(p, batch, 1, batch.numel())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def curves(iterations: int = 10) -> dict[bool, list[dict[str, float]]]:
    from pgtorchrl import load_spec, train

    frames = f"train.total_frames={2048 * iterations}"
    runs = {}
    for analytic in (False, True):
        runs[analytic] = train(load_spec(PIPELINE, [*QUIET, frames, f"loss.analytic_gradients={analytic}"])).curve
    return runs


def main() -> int:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        print("one minibatch's forward_backward (64 x 17, (64, 64) tanh), median us:")
        for name, us in minibatch_us().items():
            print(f"  {name:<18} {us:7.0f}")
        autograd, by_hand = update_ms(False), update_ms(True)
        print(
            "one update of 2048 frames (320 minibatch steps), median ms: "
            f"autograd {autograd:.0f}, by hand {by_hand:.0f}"
        )
        print(f"{PIPELINE.relative_to(ROOT)}, seed 0, per iteration: autograd / by hand")
        runs = curves()
        for i, (a, b) in enumerate(zip(runs[False], runs[True], strict=True), start=1):
            shown = "  ".join(f"{k.split('/')[1]} {a[k]:.7g} / {b[k]:.7g}" for k in SHOWN if k in a and k in b)
            print(f"  {i:>2}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
