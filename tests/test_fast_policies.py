"""The categorical fast path (:mod:`pgtorchrl.modules.fast_policies`) against the plain
TorchRL path each shortcut replaces: sampling, rollouts, scoring and the softmax kernels."""

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, OneHot, Unbounded
from torchrl.envs import ExplorationType, set_exploration_type

from pgtorchrl.envs.custom.short_corridor import ShortCorridorEnv
from pgtorchrl.modules.fast_policies import (
    GumbelSampler,
    PolicyStep,
    categorical_logits_net,
    gaussian_net,
    log_prob_and_entropy,
    log_softmax,
    one_hot_log_prob,
    softmax,
)
from pgtorchrl.modules.linear_softmax import make_corridor_actor
from pgtorchrl.modules.models import make_actor


def test_fast_rollout_writes_what_torchrls_step_writes():
    """first_episodes' tensor fast path and TorchRL's step_and_maybe_reset path agree, key by key
    and value by value, on a deterministic policy (the mode of pi)."""
    from pgtorchrl.collectors.rollout import _lean_rollout, _rollout

    theta = torch.tensor([[0.3, -0.3], [-0.2, 0.2], [1.0, 0.0]])  # right, left, right
    actor = make_corridor_actor((0.0, 0.0), num_runs=3)
    with torch.no_grad():
        actor.module[0].module.theta.copy_(theta)
    fast, _ = _lean_rollout(ShortCorridorEnv(3), actor, 12, ExplorationType.DETERMINISTIC)
    slow, _ = _rollout(ShortCorridorEnv(3), actor, 12, ExplorationType.DETERMINISTIC)
    keys = set(fast.keys(True, True))
    assert keys <= set(slow.keys(True, True))
    for t in range(
        12
    ):  # TorchRL resets a finished env (slow path); the fast path does not: compare up to the first done
        done = slow["next", "done"][:, : t + 1].any(1).squeeze(-1)
        for key in keys:
            torch.testing.assert_close(fast[key][~done, t].float(), slow[key][~done, t].float(), msg=str(key))
    assert fast["next", "state"][1, :3].flatten().tolist() == [0, 0, 0]  # always left: stays in 0


def test_fast_rollouts_gumbel_sampler_draws_softmax_probabilities():
    """The fast path's sampler (noise drawn for many steps at once) picks each action with
    probability softmax(logits), across refills of its noise; not exploring, it takes the mode."""

    torch.manual_seed(0)
    logits = torch.tensor([0.3, -1.2, 2.0]).expand(1000, 3)
    sample = GumbelSampler(7, ExplorationType.RANDOM)
    counts = sum(sample(logits) for _ in range(50))  # 50 calls: seven refills of the noise
    frequency = counts.sum(0) / counts.sum()
    expected = torch.softmax(logits[0], -1)
    se = (expected * (1 - expected) / counts.sum()).sqrt()
    assert ((frequency - expected).abs() < 4 * se).all(), (frequency, expected)
    assert (counts.sum(-1) == 50).all()  # one action per call, one-hot
    mode = GumbelSampler(7, ExplorationType.DETERMINISTIC)(logits)
    assert mode[:, 2].all() and mode.sum() == 1000


def _batch(n: int = 64, seed: int = 0):
    torch.manual_seed(seed)
    actor = make_actor(Composite(observation=Unbounded(4)), OneHot(3), hidden_sizes=[16])
    td = TensorDict({"observation": torch.randn(n, 4)}, [n])
    with torch.no_grad():
        actor(td)
    return actor, td


def test_scoring_shortcut_equals_the_distributions_log_prob_and_entropy():
    """log_prob_and_entropy on a categorical actor (from its logits) gives what TorchRL's
    OneHotCategorical from get_dist gives, in value and in gradient; one_hot_log_prob too."""
    actor, td = _batch()
    assert categorical_logits_net(actor) is not None  # the shortcut is taken
    action = td.get("action")
    log_prob, entropy = log_prob_and_entropy(actor, td, action)
    dist = actor.get_dist(td.copy())
    torch.testing.assert_close(log_prob, dist.log_prob(action))
    torch.testing.assert_close(entropy, dist.entropy())
    weights = list(actor.parameters())
    fast = torch.autograd.grad(log_prob.sum() + entropy.sum(), weights)
    plain = torch.autograd.grad(dist.log_prob(action).sum() + dist.entropy().sum(), weights)
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p)
    index = action.argmax(-1, keepdim=True)
    torch.testing.assert_close(one_hot_log_prob(td.get("logits"), index).squeeze(-1), td.get("action_log_prob"))


def test_other_actors_take_the_plain_path():
    """A tanh-squashed Gaussian is neither shape: scored through get_dist, sampled by the actor."""
    torch.manual_seed(0)
    actor = make_actor(
        Composite(observation=Unbounded(3)),
        Bounded(-1.0, 1.0, shape=(2,)),
        hidden_sizes=[8],
        distribution="tanh_normal",
    )
    assert categorical_logits_net(actor) is None and gaussian_net(actor) is None
    td = TensorDict({"observation": torch.randn(5, 3)}, [5])
    step = PolicyStep(actor, 4, ExplorationType.RANDOM, td.batch_size, td.device)
    assert step.fast is None
    out = step({"observation": td.get("observation")})
    assert set(out) == set(actor.out_keys) and out["action"].shape == (5, 2)
    assert step.log_prob(out) is None  # the actor wrote its own
    log_prob, _ = log_prob_and_entropy(actor, td, out["action"])
    torch.testing.assert_close(log_prob, actor.get_dist(td.copy()).log_prob(out["action"]))


def test_gaussian_policy_step_samples_the_actors_distribution_and_scores_like_it():
    """A diagonal Gaussian actor on the fast path: its loc and scale as the actor writes them,
    actions with the actor's mean and standard deviation (within 4 standard errors over 4000
    draws), the mean when not exploring, and log-probabilities equal to IndependentNormal's."""
    torch.manual_seed(0)
    actor = make_actor(Composite(observation=Unbounded(3)), Bounded(-1.0, 1.0, shape=(2,)), hidden_sizes=[8])
    assert gaussian_net(actor) is not None
    obs = {"observation": torch.randn(5, 3)}
    td = TensorDict(dict(obs), [5])
    with torch.no_grad():
        actor(td)
        step = PolicyStep(actor, 4000, ExplorationType.RANDOM, td.batch_size, td.device)
        assert step.fast == "normal"
        draws = [step(obs) for _ in range(4000)]
    torch.testing.assert_close(draws[0]["loc"], td.get("loc"))
    torch.testing.assert_close(draws[0]["scale"], td.get("scale"))
    actions = torch.stack([d["action"] for d in draws])
    se = td.get("scale") / 4000**0.5
    assert ((actions.mean(0) - td.get("loc")).abs() < 4 * se).all()
    assert ((actions.std(0) / td.get("scale") - 1).abs() < 0.05).all()
    stacked = {k: torch.stack([d[k] for d in draws[:10]], 1) for k in ("loc", "scale", "action")}
    expected = actor.get_dist(td.copy()).log_prob(stacked["action"].transpose(0, 1)).transpose(0, 1)
    torch.testing.assert_close(step.log_prob(stacked), expected)
    mode = PolicyStep(actor, 4, ExplorationType.DETERMINISTIC, td.batch_size, td.device)(obs)
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        plain = actor(TensorDict(dict(obs), [5]))
    torch.testing.assert_close(mode["action"], plain.get("action"))


def test_policy_step_samples_the_actors_distribution():
    """The fast PolicyStep writes the actor's logits and draws its actions with the actor's
    probabilities (frequencies within 4 standard errors over 400 steps of 64 envs)."""
    actor, td = _batch()
    obs = {"observation": td.get("observation")}
    step = PolicyStep(actor, 400, ExplorationType.RANDOM, td.batch_size, td.device)
    assert step.fast
    counts = torch.zeros(64, 3)
    with torch.no_grad():
        for _ in range(400):
            out = step(obs)
            counts += out["action"]
        torch.testing.assert_close(out["logits"], td.get("logits"))
    probs = softmax(td.get("logits"))
    se = (probs * (1 - probs) / 400).sqrt()
    assert ((counts / 400 - probs).abs() < 4 * se + 1e-3).float().mean() > 0.99


@pytest.mark.parametrize("steps", [10, 30_000])
def test_softmax_kernels_equal_torchs(steps):
    """Moving a short action dim to the front (large batches) changes no value."""
    logits = torch.randn(steps, 2, dtype=torch.float64)
    torch.testing.assert_close(softmax(logits), torch.softmax(logits, -1))
    torch.testing.assert_close(log_softmax(logits), torch.log_softmax(logits, -1))
