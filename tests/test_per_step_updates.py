"""Per-step updates (``train.per_step_updates``) are Sutton & Barto's boxed REINFORCE updates."""

from pathlib import Path

import pytest
import torch

import pgtorchrl.trainers.per_step as per_step
import pgtorchrl.trainers.trainer as trainer
from pgtorchrl.collectors.rollout import MASK_KEY, first_episodes
from pgtorchrl.config.spec_file import SpecError
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec

BASELINE = Path(__file__).resolve().parents[1] / "pipelines" / "short_corridor_baseline.yaml"


def _pipeline(baseline: str, solver: str = "auto", *extra: str):
    # no probability floor: grad ln pi(a) = onehot(a) - pi exactly; larger step sizes than the
    # book's so that the steps within one episode visibly change the later ones
    spec = load_spec(
        BASELINE,
        [
            "sweep=null",
            "env.num_envs=6",
            "actor.prob_floor=0.0",
            f"advantage.baseline={baseline}",
            "optim.lr=0.01",
            "critic_optim.lr=0.05",
            "actor.init_preferences=[0.3, -0.2]",
            f"train.per_step_solver={solver}",
            *extra,
        ],
    )
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


@pytest.mark.parametrize("solver", ["sequential", "fixed_point"])
@pytest.mark.parametrize("baseline", ["critic", "none"])
def test_per_step_updates_are_the_boxed_algorithm(baseline, solver):
    p, batch = _pipeline(baseline, solver)
    steps = batch.shape[-1]
    assert steps > 3 and not batch.get(MASK_KEY).all()  # several steps, ragged episodes
    theta, w = _box(p, batch, baseline == "critic")
    metrics = trainer.update_per_step(p, batch, 1, 0)
    assert torch.allclose(p.actor.module[0].module.theta.double(), theta, atol=1e-5)
    if baseline == "critic":
        assert torch.allclose(p.critic.module.w.double(), w, atol=1e-5)
    if solver == "fixed_point":  # converged before the T sweeps that make it exact by construction
        assert 2 <= metrics["train/solver_sweeps"] < steps
    else:
        assert "train/solver_sweeps" not in metrics


def test_fixed_point_equals_the_float64_loop_on_the_books_setting():
    """Figure 13.2's setting (probability floor, 100 runs, the first and longest episodes,
    hundreds of steps): the fixed-point weights equal the boxed loop's run in float64 to 1e-6 of
    their size, closer than the float32 loop itself gets (it rounds at every step)."""

    def solve(solver: str, float64: bool = False):
        spec = load_spec(BASELINE, ["sweep=null", f"train.per_step_solver={solver}"])
        torch.manual_seed(0)
        p = build_pipeline(spec)
        assert p.critic is not None  # the baseline spec's scalar critic
        batch = first_episodes(p.make_collector().env, p.actor)
        p.advantage(batch)
        if float64:
            p.actor.double(), p.critic.double()
            batch = batch.apply(lambda x: x.double() if x.is_floating_point() else x)
        metrics = trainer.update_per_step(p, batch, 1, 0)
        weights = [p.actor.module[0].module.theta.detach().double(), p.critic.module.w.detach().double()]
        return weights, metrics, batch.shape[-1]

    exact, m_exact, steps = solve("sequential", float64=True)
    fixed, m_fixed, _ = solve("fixed_point")
    loop32, _, _ = solve("sequential")
    assert steps > 100 and exact[1].abs().max() > 10  # long episodes; the baseline moved
    for e, f, s in zip(exact, fixed, loop32):
        size = max(1.0, e.abs().max().item())
        assert (f - e).abs().max() <= 1e-6 * size
        assert (s - e).abs().max() <= 1e-4 * size
    assert 2 <= m_fixed["train/solver_sweeps"] < steps
    assert all(m_fixed[k] == pytest.approx(m_exact[k], rel=1e-5) for k in m_exact)


def test_fixed_point_hands_an_overflowing_batch_to_the_sequential_loop():
    # alpha_w = 1.9 is stable step by step (|1 - alpha_w| < 1) but the fixed-point iteration's
    # transient grows like (alpha_w T)^k / k! and overflows float32 on long episodes
    p, batch = _pipeline("critic", "fixed_point", "critic_optim.lr=1.9", "actor.init_preferences=[-1.47, 1.47]")
    assert batch.shape[-1] > 100
    assert per_step._fixed_point(p, batch) is None
    p, batch = _pipeline("critic", "fixed_point", "critic_optim.lr=1.9", "actor.init_preferences=[-1.47, 1.47]")
    p_seq, batch_seq = _pipeline("critic", "sequential", "critic_optim.lr=1.9", "actor.init_preferences=[-1.47, 1.47]")
    metrics = trainer.update_per_step(p, batch, 1, 0)
    trainer.update_per_step(p_seq, batch_seq, 1, 0)
    assert "train/solver_sweeps" not in metrics
    assert torch.equal(p.critic.module.w, p_seq.critic.module.w)


def test_auto_solver_falls_back_and_an_explicit_fixed_point_says_why():
    p, _ = _pipeline("critic", "auto", "optim.momentum=0.9")
    assert per_step._solver(p) == "sequential"
    p, _ = _pipeline("critic", "auto")
    assert per_step._solver(p) == "fixed_point"
    with pytest.raises(
        ValueError, match=r"^train.per_step_solver: fixed_point needs plain SGD \(optim: .*set sequential"
    ):
        _pipeline("critic", "fixed_point", "optim.momentum=0.9")
    with pytest.raises(ValueError, match="reduction: sum"):
        _pipeline("critic", "fixed_point", "loss.reduction=mean")


def test_tensor_path_equals_the_tensordict_path(monkeypatch):
    results = []
    for fast in (True, False):
        p, batch = _pipeline("critic", "sequential")
        if not fast:
            monkeypatch.setattr(per_step, "_tensor_step_losses", lambda p, batch: None)
        metrics = trainer.update_per_step(p, batch, 1, 0)
        results.append((p.actor.module[0].module.theta.detach().clone(), p.critic.module.w.detach().clone(), metrics))
    (theta_a, w_a, m_a), (theta_b, w_b, m_b) = results
    assert torch.allclose(theta_a, theta_b, atol=1e-6) and torch.allclose(w_a, w_b, atol=1e-6)
    assert m_a.keys() == m_b.keys()
    assert all(m_a[k] == pytest.approx(m_b[k], rel=1e-5, abs=1e-6) for k in m_a)


def test_a_solver_is_named_only_with_per_step_updates():
    cartpole = BASELINE.parent / "vpg_cartpole.yaml"
    with pytest.raises(SpecError, match=r"train.per_step_solver.*only with train.per_step_updates: true"):
        load_spec(cartpole, ["train.per_step_solver=fixed_point"])
