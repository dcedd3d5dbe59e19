"""Natural gradient, TRPO and PPO proven against the maths: Fisher-vector products against explicit
Fisher matrices, conjugate gradient against a direct solve, the short corridor's exact natural
gradient, the trust region held over a whole run, and TorchRL's PPO loss against the clipped
objective written out by hand."""

import math
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torch import nn
from torch.distributions import Normal, kl_divergence

from pgtorchrl.objectives.trust_region import (
    TRPO,
    NaturalPolicyGradient,
    conjugate_gradient,
    fisher_vector_product,
    flat,
)

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def _net(n_in=3, n_out=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 5), nn.Tanh(), nn.Linear(5, n_out)).double()


def _categorical_fisher(net, obs):
    """F = mean_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T, the expectation over actions exact."""
    params = list(net.parameters())
    n = sum(p.numel() for p in params)
    fisher = torch.zeros(n, n, dtype=F64)
    for s in range(obs.shape[0]):
        log_pi = torch.log_softmax(net(obs[s]), -1)
        for a in range(log_pi.numel()):
            g = flat(torch.autograd.grad(log_pi[a], params, retain_graph=True))
            fisher += log_pi[a].exp().detach() * torch.outer(g, g) / obs.shape[0]
    return fisher


def test_fisher_vector_products_equal_the_explicit_categorical_fisher_times_v():
    net = _net()
    obs = torch.randn(7, 3, dtype=F64)
    old = torch.log_softmax(net(obs), -1).detach()
    params = list(net.parameters())
    kl = (old.exp() * (old - torch.log_softmax(net(obs), -1))).sum(-1).mean()  # KL(pi_old || pi_theta)
    fisher = _categorical_fisher(net, obs)
    for seed in range(3):
        v = torch.randn(fisher.shape[0], dtype=F64, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(fisher_vector_product(kl, params, v), fisher @ v, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(
            fisher_vector_product(kl, params, v, damping=0.1), fisher @ v + 0.1 * v, atol=1e-12, rtol=1e-10
        )


def test_fisher_vector_products_equal_the_analytic_gaussian_fisher_times_v():
    """A diagonal Gaussian with mean net(s) and a state-independent log-std: F is block-diagonal,
    mean_s J_mu^T diag(1/sigma^2) J_mu for the mean's weights and 2 I for the log-std."""
    net = _net(3, 2)
    log_std = nn.Parameter(torch.tensor([-0.3, 0.2], dtype=F64))
    obs = torch.randn(6, 3, dtype=F64)
    params = [*net.parameters(), log_std]
    old_mu, old_std = net(obs).detach(), log_std.exp().detach()
    kl = kl_divergence(Normal(old_mu, old_std), Normal(net(obs), log_std.exp())).sum(-1).mean()
    n_net = sum(p.numel() for p in net.parameters())
    fisher = torch.zeros(n_net + 2, n_net + 2, dtype=F64)
    for s in range(obs.shape[0]):
        mu = net(obs[s])
        jac = torch.stack(
            [flat(torch.autograd.grad(mu[k], list(net.parameters()), retain_graph=True)) for k in range(2)]
        )
        fisher[:n_net, :n_net] += jac.T @ torch.diag(1 / old_std**2) @ jac / obs.shape[0]
    fisher[n_net:, n_net:] = 2 * torch.eye(2, dtype=F64)
    v = torch.randn(n_net + 2, dtype=F64)
    torch.testing.assert_close(fisher_vector_product(kl, params, v), fisher @ v, atol=1e-12, rtol=1e-10)


def test_conjugate_gradient_matches_a_direct_solve_on_the_damped_fisher():
    net = _net()
    obs = torch.randn(9, 3, dtype=F64)
    fisher = _categorical_fisher(net, obs) + 0.1 * torch.eye(sum(p.numel() for p in net.parameters()), dtype=F64)
    b = torch.randn(fisher.shape[0], dtype=F64)
    x, residual = conjugate_gradient(lambda v: fisher @ v, b, iterations=200, residual_tol=1e-24)
    torch.testing.assert_close(x, torch.linalg.solve(fisher, b), atol=1e-8, rtol=1e-8)
    assert residual < 1e-10


# --- the short corridor: exact natural gradient, and NPG converging to p* -----------------------------------
def corridor_j(theta: torch.Tensor) -> torch.Tensor:
    """J(theta) of Sutton & Barto's Example 13.1: (2p - 4) / (p (1 - p)), p = P(right) = softmax(theta)[0]."""
    p = torch.softmax(theta, -1)[0]
    return (2 * p - 4) / (p * (1 - p))


def test_the_natural_gradient_on_the_short_corridor_is_f_inverse_g_of_the_exact_j():
    theta0 = torch.tensor([-1.47, 1.47], dtype=F64)  # the textbook's start, P(right) = 0.05
    theta = theta0.clone().requires_grad_(True)
    g = torch.autograd.grad(corridor_j(theta), theta)[0]  # the exact gradient of J
    pi = torch.softmax(theta0, -1)
    # every state looks the same: F = sum_a pi(a) grad log pi(a) grad log pi(a)^T, with grad log pi(a) = e_a - pi
    fisher = sum(
        pi[a] * torch.outer(torch.eye(2, dtype=F64)[a] - pi, torch.eye(2, dtype=F64)[a] - pi) for a in range(2)
    )
    damping = 1e-3
    expected = torch.linalg.solve(fisher + damping * torch.eye(2, dtype=F64), g)
    # the same through the optimizer's pieces: the KL's Hessian and conjugate gradient
    theta = theta0.clone().requires_grad_(True)
    old = torch.log_softmax(theta0, -1)
    kl = (old.exp() * (old - torch.log_softmax(theta, -1))).sum()
    natural, _ = conjugate_gradient(
        lambda v: fisher_vector_product(kl, [theta], v, damping), g, iterations=2, residual_tol=0.0
    )
    torch.testing.assert_close(natural, expected, atol=1e-10, rtol=1e-10)
    assert natural[0] > 0  # towards right: p rises towards p* = 0.586


def _corridor_run(optimizer, steps=300):
    theta = nn.Parameter(torch.tensor([-1.47, 1.47], dtype=F64))
    optim = optimizer([theta])
    ps, kls = [], []
    for _ in range(steps):
        old = torch.log_softmax(theta.detach(), -1)

        def closure():
            kl = (old.exp() * (old - torch.log_softmax(theta, -1))).sum()  # noqa: B023 (called in this iteration)
            return -corridor_j(theta), kl  # ascend J: minimize -J

        optim.step(closure)
        ps.append(torch.softmax(theta.detach(), -1)[0].item())
        kls.append(optim.stats["kl"])
    return ps, kls


P_STAR = 2 - math.sqrt(2)


def test_npg_reaches_the_optimal_corridor_policy_from_the_textbook_start():
    """Every NPG step has the same KL radius, so near p* it circles the optimum at a distance
    set by max_kl: the iterates stay close and their mean is p*."""
    ps, kls = _corridor_run(lambda params: NaturalPolicyGradient(params, max_kl=0.001, damping=1e-3, cg_iters=2))
    assert all(abs(p - P_STAR) < 0.02 for p in ps[-100:])
    assert abs(sum(ps[-100:]) / 100 - P_STAR) < 0.005
    assert all(0.0005 < kl < 0.0015 for kl in kls)  # each step measured near the radius the quadratic model aims at


def test_trpo_converges_to_the_optimal_corridor_policy_within_its_trust_region():
    ps, kls = _corridor_run(lambda params: TRPO(params, max_kl=0.01, damping=1e-3, cg_iters=2))
    assert abs(ps[-1] - P_STAR) < 0.005
    assert max(kls) <= 0.01


# --- TRPO: the trust region holds, and a rejected step changes nothing -------------------------------------------
def test_a_rejected_line_search_leaves_the_policy_unchanged():
    net = _net()
    obs = torch.randn(8, 3, dtype=F64)
    old = torch.log_softmax(net(obs), -1).detach()
    before = [p.detach().clone() for p in net.parameters()]
    optim = TRPO(net.parameters(), max_kl=0.01, max_backtracks=5)

    start = flat(before)
    slope = torch.randn(start.numel(), dtype=F64)

    def closure():  # its slope promises a decrease, its curvature (1e6) forbids every step tried
        weights = flat(list(net.parameters()))
        kl = (old.exp() * (old - torch.log_softmax(net(obs), -1))).sum(-1).mean()
        return slope @ weights + 1e6 * ((weights - start) ** 2).sum(), kl

    optim.step(closure)
    assert optim.stats["line_search_steps"] == 5 and optim.stats["step_size"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


# --- PPO through TorchRL's loss is the clipped objective ----------------------------------------------------------
def test_ppo_through_torchrl_gives_the_clipped_objective_written_out_by_hand():
    from torchrl.data import Composite, OneHot, Unbounded

    from pgtorchrl.components import LOSSES
    from pgtorchrl.modules.models import make_actor, make_critic

    torch.manual_seed(3)
    spec = Composite(observation=Unbounded(3))
    actor, critic = make_actor(spec, OneHot(3), hidden_sizes=[8]), make_critic(spec, hidden_sizes=[8])
    entry = LOSSES["torchrl.ClipPPOLoss"]
    config = entry.model(
        name="torchrl.ClipPPOLoss", clip_epsilon=0.2, entropy_bonus=False, critic_coeff=0.5, loss_critic_type="l2"
    )
    loss = LOSSES.build(config, actor, critic)
    n = 16
    obs = torch.randn(n, 3)
    action = torch.nn.functional.one_hot(torch.randint(3, (n,)), 3)
    old_log_prob = torch.log_softmax(torch.randn(n, 3), -1)[action.bool()]  # a different collecting policy
    batch = TensorDict(
        {
            "observation": obs,
            "action": action,
            "action_log_prob": old_log_prob,
            "advantage": torch.randn(n, 1),
            "value_target": torch.randn(n, 1),
        },
        [n],
    )
    out = loss(batch.clone())
    ours = out["loss_objective"] + out["loss_critic"]
    theirs_grads = torch.autograd.grad(ours, [*actor.parameters(), *critic.parameters()])

    logits = actor.module[0](batch.clone())["logits"]
    log_prob = torch.log_softmax(logits, -1)[action.bool()]
    ratio = (log_prob - old_log_prob).exp()
    adv = batch["advantage"].squeeze(-1)
    by_hand_objective = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    by_hand_critic = 0.5 * ((critic(batch.clone())["state_value"] - batch["value_target"]) ** 2).mean()
    torch.testing.assert_close(out["loss_objective"], by_hand_objective)
    torch.testing.assert_close(out["loss_critic"], by_hand_critic)
    hand_grads = torch.autograd.grad(by_hand_objective + by_hand_critic, [*actor.parameters(), *critic.parameters()])
    for a, b in zip(theirs_grads, hand_grads):
        torch.testing.assert_close(a, b)


# --- in a pipeline ------------------------------------------------------------------------------------------------
def test_every_trpo_update_of_a_whole_run_stays_in_the_trust_region(store):
    from mlflow.tracking import MlflowClient

    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    spec = load_spec(
        ROOT / "pipelines" / "trpo_cartpole.yaml",
        ["train.total_frames=12288", "eval.every_frames=null", "eval.episodes=2", "eval.target_return=null"],
    )
    result = train(spec)
    client = MlflowClient(store)
    kl = [m.value for m in client.get_metric_history(result.run_id, "train/kl")]
    assert len(kl) == 12 and max(kl) <= spec.optim.max_kl  # measured after each step, on its batch
    for key in ("train/line_search_steps", "train/cg_residual", "train/surrogate_improvement", "train/step_size"):
        assert len(client.get_metric_history(result.run_id, key)) == 12, key
    improvements = [m.value for m in client.get_metric_history(result.run_id, "train/surrogate_improvement")]
    assert all(i > 0 for i in improvements)  # every accepted step improved the surrogate


def test_a_trust_region_optimizer_needs_the_critic_its_own_optimizer():
    from pgtorchrl.pipeline.parse import load_spec

    with pytest.raises(Exception, match="critic_optim: optim 'trpo' steps the actor only"):
        load_spec(ROOT / "pipelines" / "trpo_cartpole.yaml", ["critic_optim=null"])
    with pytest.raises(Exception, match="takes one trust-region step per batch"):
        load_spec(ROOT / "pipelines" / "trpo_cartpole.yaml", ["train.epochs=4"])
