"""Per-step updates (``train.per_step_updates``) are Sutton & Barto's boxed REINFORCE updates."""
from pathlib import Path

import pytest
import torch

import pgtorchrl.trainer as trainer
from pgtorchrl.collectors import MASK_KEY, first_episodes
from pgtorchrl.pipeline import build_pipeline
from pgtorchrl.spec import load_spec

BASELINE = Path(__file__).resolve().parents[1] / "pipelines" / "short_corridor_baseline.yaml"


def _pipeline(baseline: str):
    # no probability floor: grad ln pi(a) = onehot(a) - pi exactly; larger step sizes than the
    # book's so that the steps within one episode visibly change the later ones
    spec = load_spec(BASELINE, [
        "sweep=null", "env.num_envs=6", "actor.prob_floor=0.0", f"advantage.baseline={baseline}",
        "optim.lr=0.01", "critic_optim.lr=0.05", "actor.init_preferences=[0.3, -0.2]",
    ])
    torch.manual_seed(0)
    p = build_pipeline(spec)
    batch = first_episodes(p.make_collector().env, p.actor)
    p.advantage(batch)
    return p, batch


def _box(p, batch, baseline: bool):
    """The box, one episode per run, written out: for t = 0..T-1,
    delta = G_t - w; w <- w + alpha_w delta; theta <- theta + alpha gamma^t delta grad ln pi(A_t)."""
    theta = p.actor.module[0].module.theta.detach().clone().double()
    w = p.critic.module.w.detach().clone().double()
    alpha, alpha_w = p.actor_optim.param_groups[0]["lr"], p.critic_optim.param_groups[0]["lr"]
    mask = batch.get(MASK_KEY)
    G = batch.get("value_target").squeeze(-1).double()
    action = batch.get("action").double()
    for t in range(batch.shape[-1]):
        on = mask[:, t].double()
        delta = (G[:, t] - (w if baseline else 0.0)) * on
        score = action[:, t] - torch.softmax(theta, -1)
        if baseline:
            w = w + alpha_w * delta
        theta = theta + alpha * delta.unsqueeze(-1) * score  # gamma = 1
    return theta, w


@pytest.mark.parametrize("baseline", ["critic", "none"])
def test_per_step_updates_are_the_boxed_algorithm(baseline):
    p, batch = _pipeline(baseline)
    assert batch.shape[-1] > 3 and not batch.get(MASK_KEY).all()  # several steps, ragged episodes
    theta, w = _box(p, batch, baseline == "critic")
    trainer.update_per_step(p, batch, 1, 0)
    assert torch.allclose(p.actor.module[0].module.theta.double(), theta, atol=1e-5)
    if baseline == "critic":
        assert torch.allclose(p.critic.module.w.double(), w, atol=1e-5)


def test_tensor_path_equals_the_tensordict_path(monkeypatch):
    results = []
    for fast in (True, False):
        p, batch = _pipeline("critic")
        if not fast:
            monkeypatch.setattr(trainer, "_tensor_step_losses", lambda p, batch: None)
        metrics = trainer.update_per_step(p, batch, 1, 0)
        results.append((p.actor.module[0].module.theta.detach().clone(), p.critic.module.w.detach().clone(), metrics))
    (theta_a, w_a, m_a), (theta_b, w_b, m_b) = results
    assert torch.allclose(theta_a, theta_b, atol=1e-6) and torch.allclose(w_a, w_b, atol=1e-6)
    assert m_a.keys() == m_b.keys()
    assert all(m_a[k] == pytest.approx(m_b[k], rel=1e-5, abs=1e-6) for k in m_a)
