"""Unbiasedness and variance of every policy-gradient estimator, on the short corridor.

For several policies theta of Sutton & Barto's Example 13.1 (whose exact gradient is known),
samples N episodes once and applies every estimator of the slides to the *same* batch:
prints the Monte Carlo mean of the gradient's theta_right component, its standard error, the
exact value, the z-score, and the per-episode gradient variance (trace of the covariance).
Also shows the two biased cases: discounted reward-to-go without the gamma^t factor, and an
action-dependent baseline. Everything is logged to MLflow (experiment "estimator-report"):
metrics per estimator (step = theta index), and the table as an artifact.

    python benchmarks/estimator_report.py [--episodes 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import re
import warnings

import torch

from pgtorchrl.collectors.rollout import first_episodes
from pgtorchrl.envs.custom.short_corridor import make_short_corridor
from pgtorchrl.modules.linear_softmax import make_corridor_actor
from pgtorchrl.objectives.corridor_exact import (
    estimator_catalogue,
    exact_gradient,
    exact_value_critic,
    per_episode_gradients,
)
from pgtorchrl.objectives.value.advantages import FullReturn, RewardToGo
from pgtorchrl.record.tracking import resolve_tracking_uri

THETAS = [(-1.47, 1.47), (-1.0, 1.0), (0.0, 0.0), (0.8, -0.2)]


def row(name, grads, exact):
    mean, se = grads.mean(0)[0].item(), (grads.std(0)[0] / grads.shape[0] ** 0.5).item()
    return {
        "estimator": name,
        "mean": mean,
        "se": se,
        "exact": exact[0].item(),
        "z": (mean - exact[0].item()) / se,
        "variance": grads.var(0).sum().item(),
    }


def estimators(theta, gamma):
    """Undiscounted: the slides' whole sequence. Discounted: the gamma^t factor is what makes
    reward-to-go estimate the gradient of the discounted value of s_0."""
    if gamma == 1.0:
        return estimator_catalogue(theta, gamma)
    exact_v = exact_value_critic(theta, gamma)
    return {
        "full return G(tau)": FullReturn(gamma=gamma, truncation="terminal"),
        "gamma^t G_t": RewardToGo(gamma=gamma, truncation="terminal", gamma_t_factor=True),
        "gamma^t (G_t - V(s_t))": RewardToGo(exact_v, gamma=gamma, baseline="critic", gamma_t_factor=True),
        "G_t without gamma^t (biased)": RewardToGo(gamma=gamma, truncation="terminal"),
    }


def report(theta, episodes, seed, gamma):
    torch.manual_seed(seed)
    batch = first_episodes(make_short_corridor(episodes), make_corridor_actor(theta))
    exact = exact_gradient(torch.tensor(theta), gamma)
    rows = [row(n, per_episode_gradients(e(batch.clone())), exact) for n, e in estimators(theta, gamma).items()]
    if gamma == 1.0:
        biased = RewardToGo(gamma=gamma, truncation="terminal")(batch.clone())
        biased.set("advantage", biased["advantage"] - 5.0 * biased["action"][..., :1].float())
        rows.append(row("G_t - b(a), b action-dependent (biased)", per_episode_gradients(biased), exact))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    lines = []
    settings = [(theta, 1.0) for theta in THETAS] + [((0.0, 0.0), 0.9)]
    tables = []
    for theta, gamma in settings:
        p = torch.sigmoid(torch.tensor(theta[0] - theta[1])).item()
        rows = report(theta, args.episodes, args.seed, gamma)
        tables.append((theta, gamma, p, rows))
        lines.append(f"\ntheta={theta} P(right)={p:.3f} gamma={gamma} ({args.episodes} episodes, seed {args.seed})")
        lines.append(
            f"| {'estimator':<40} | {'mean dJ/dtheta_R':>16} | {'s.e.':>6} | {'exact':>8} | {'z':>6} "
            f"| {'variance':>10} |"
        )
        lines.append(f"|{'-' * 42}|{'-' * 18}|{'-' * 8}|{'-' * 10}|{'-' * 8}|{'-' * 12}|")
        for r in rows:
            lines.append(
                f"| {r['estimator']:<40} | {r['mean']:>16.3f} | {r['se']:>6.3f} | {r['exact']:>8.3f} "
                f"| {r['z']:>6.2f} | {r['variance']:>10.1f} |"
            )
    text = "\n".join(lines)
    print(text)

    import mlflow

    mlflow.set_tracking_uri(resolve_tracking_uri(None))
    mlflow.set_experiment("estimator-report")
    with mlflow.start_run(run_name=f"corridor-{args.episodes}-seed{args.seed}"):
        mlflow.log_params({"episodes": args.episodes, "seed": args.seed, "thetas": str(THETAS)})
        for step, (_, _, _, rows) in enumerate(tables):
            for r in rows:
                slug = re.sub(r"[^A-Za-z0-9_]+", "_", r["estimator"]).strip("_")
                mlflow.log_metrics({f"variance/{slug}": r["variance"], f"z/{slug}": r["z"]}, step=step)
        mlflow.log_text(text, "estimator_report.md")
        print(
            f"\nlogged to MLflow run {mlflow.active_run().info.run_id} ({os.environ.get('MLFLOW_TRACKING_URI', 'sqlite:///mlruns/mlflow.db')})"
        )


if __name__ == "__main__":
    main()
