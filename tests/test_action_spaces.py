"""Actions beyond one Discrete or Box (pgtorchrl.modules.distributions): MultiDiscrete as independent
categoricals, MultiBinary as independent Bernoullis, and masked Discrete actions; their log-probs,
entropies and KLs against hand computations and TorchRL's distributions, masked actions never
sampled and without gradient, and which of them the fast paths cover."""

import math
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Binary, Composite, MultiOneHot, OneHot, Unbounded
from torchrl.modules import MaskedOneHotCategorical, OneHotCategorical

from pgtorchrl.modules.distributions import IndependentBernoulli, MaskedOneHot, MultiOneHotCategorical
from pgtorchrl.modules.fast_policies import categorical_logits_net, gaussian_net
from pgtorchrl.modules.models import LOG_PROB_KEY, make_actor, make_critic
from pgtorchrl.objectives.ppo import ClipPPOLoss

ROOT = Path(__file__).resolve().parents[1]


def test_multi_discrete_log_prob_and_entropy_are_sums_over_components():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    dist = MultiOneHotCategorical(logits, nvec=[2, 3])
    action = dist.sample()
    assert action.shape == (6, 5) and (action[:, :2].sum(-1) == 1).all() and (action[:, 2:].sum(-1) == 1).all()
    a, b = logits[:, :2].log_softmax(-1), logits[:, 2:].log_softmax(-1)
    by_hand = (a * action[:, :2]).sum(-1) + (b * action[:, 2:]).sum(-1)
    torch.testing.assert_close(dist.log_prob(action), by_hand)
    entropy = -(a.exp() * a).sum(-1) - (b.exp() * b).sum(-1)
    torch.testing.assert_close(dist.entropy(), entropy)
    parts = [OneHotCategorical(logits=logits[:, :2]), OneHotCategorical(logits=logits[:, 2:])]
    torch.testing.assert_close(
        dist.log_prob(action), parts[0].log_prob(action[:, :2]) + parts[1].log_prob(action[:, 2:])
    )
    assert dist.deterministic_sample.tolist() == torch.cat([p.mode for p in parts], -1).tolist()
    other = MultiOneHotCategorical(torch.randn(6, 5), nvec=[2, 3])
    kl = torch.distributions.kl_divergence(dist, other)
    torch.testing.assert_close(kl, sum(torch.distributions.kl_divergence(p, q) for p, q in zip(parts, other.parts)))


def test_multi_binary_log_prob_is_the_bernoullis_by_hand():
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    dist = IndependentBernoulli(logits)
    action = torch.tensor([[1, 0, 1]], dtype=torch.int8)  # TorchRL's Binary spec dtype
    p = torch.sigmoid(logits)
    by_hand = (action * p.log() + (1 - action) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(dist.log_prob(action), by_hand)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(dist.entropy(), entropy)
    assert dist.deterministic_sample.tolist() == [[1.0, 0.0, 1.0]]


def test_a_masked_action_is_never_sampled_nor_chosen_and_gets_no_gradient():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 0, 0, 1]] * 4, dtype=torch.int8)
    dist = MaskedOneHot(logits, mask)
    draws = dist.sample((25_000,))  # 100k draws over the 4 rows
    assert (draws[..., mask[0] == 0] == 0).all() and draws.sum() == 100_000
    big = MaskedOneHot(torch.tensor([[0.0, 50.0, 0.0, 0.0, 0.0, 1.0]]), mask[:1])  # the best action is illegal
    assert big.deterministic_sample.argmax(-1).item() == 5
    legal = logits.masked_fill(mask == 0, -math.inf).log_softmax(-1)  # renormalized over the legal actions
    action = dist.sample()
    torch.testing.assert_close(dist.log_prob(action), (legal.masked_fill(mask == 0, 0) * action).sum(-1))
    p = legal.exp()
    torch.testing.assert_close(dist.entropy(), -(p * legal.masked_fill(mask == 0, 0)).sum(-1))
    reference = MaskedOneHotCategorical(logits=logits, mask=mask.bool())
    torch.testing.assert_close(dist.log_prob(action), reference.log_prob(action))
    (dist.log_prob(action).sum() + dist.entropy().sum()).backward()
    assert (logits.grad[mask == 0] == 0).all() and (logits.grad[mask == 1] != 0).any()


def test_the_masked_kl_is_over_the_legal_actions_and_has_finite_gradients():
    mask = torch.tensor([[1, 1, 0, 1]], dtype=torch.int8)
    old, new_logits = torch.randn(1, 4), torch.randn(1, 4, requires_grad=True)
    kl = torch.distributions.kl_divergence(MaskedOneHot(old, mask), MaskedOneHot(new_logits, mask))
    p = old.masked_fill(mask == 0, -math.inf).softmax(-1)[mask == 1]
    q = new_logits.detach().masked_fill(mask == 0, -math.inf).softmax(-1)[mask == 1]
    torch.testing.assert_close(kl.detach(), (p * (p.log() - q.log())).sum().reshape(1))
    kl.sum().backward()
    assert torch.isfinite(new_logits.grad).all() and new_logits.grad[0, 2] == 0


def _obs(n=3):
    return TensorDict({"observation": torch.randn(n, 4)}, [n])


@pytest.mark.parametrize(
    "action_spec, extra",
    [(MultiOneHot([2, 3]), {}), (Binary(3), {}), (OneHot(4), {"action_mask": torch.tensor([[1, 0, 1, 1]] * 3).bool()})],
)
def test_these_actors_take_torchrls_own_path_not_the_fast_one(action_spec, extra):
    spec = Composite(observation=Unbounded(4), **({"action_mask": Binary(4)} if extra else {}))
    actor = make_actor(spec, action_spec, hidden_sizes=[8])
    assert categorical_logits_net(actor) is None and gaussian_net(actor) is None  # the fast paths do not apply
    td = _obs().update(extra)
    out = actor(td)
    assert out["action"].shape[-1] == action_spec.shape[-1] and out[LOG_PROB_KEY].shape == (3,)
    if extra:
        assert (out["action"][:, 1] == 0).all()
    critic = make_critic(spec, hidden_sizes=[8])
    loss = ClipPPOLoss(actor, critic, functional=False)
    loss.set_keys(sample_log_prob=LOG_PROB_KEY)
    batch = critic(out.detach())
    batch["advantage"], batch["value_target"] = torch.randn(3, 1), torch.randn(3, 1)
    assert not loss.fast_path(batch)  # TorchRL's ClipPPOLoss forward
    losses = loss(batch)
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()


def test_a_mask_key_of_none_ignores_the_envs_mask():
    spec = Composite(observation=Unbounded(4), action_mask=Binary(4))
    assert categorical_logits_net(make_actor(spec, OneHot(4), hidden_sizes=[8], mask_key=None)) is not None


def test_the_masked_pipeline_never_takes_an_illegal_action_and_logs_how_many_it_took(store):
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    spec = ROOT / "pipelines" / "ppo_masked.yaml"
    base = ["train.total_frames=1920", "eval.episodes=2"]
    masked = train(load_spec(spec, base))
    ignored = train(load_spec(spec, [*base, "actor.mask_key=null"]))
    assert [row["rollout/invalid_actions"] for row in masked.curve] == [0.0, 0.0, 0.0]
    assert all(row["rollout/invalid_actions"] > 100 for row in ignored.curve)  # about 96% of 640 steps


@pytest.mark.parametrize(
    "env_id, action_type, observation_type",
    [("pgtorchrl/CopyDigits-v0", "MultiOneHot", "MultiCategorical"), ("pgtorchrl/CopyBits-v0", "Binary", "Binary")],
)
def test_gym_envs_keep_a_single_envs_multi_discrete_and_multi_binary_specs(env_id, action_type, observation_type):
    """gymnasium batches these spaces into a Box (TorchRL: BoundedDiscrete); make_gym_env gives the
    single env's encoding, and an action copied from the observation is stepped as the same values."""
    from pgtorchrl.envs.gym import make_gym_env

    env = make_gym_env(env_id, num_envs=3)
    assert type(env.action_spec).__name__ == action_type and env.action_spec.shape[0] == 3
    assert type(env.observation_spec["observation"]).__name__ == observation_type
    td = env.reset()
    target = td["observation"]
    if action_type == "MultiOneHot":
        nvec = [int(n) for n in env.action_spec.nvec]
        action = torch.cat([torch.nn.functional.one_hot(target[:, i], n) for i, n in enumerate(nvec)], -1).bool()
    else:
        action = target.clone()
    assert torch.equal(env.step(td.set("action", action))["next", "reward"], torch.ones(3, 1))  # every component right


@pytest.mark.slow  # over 15 s on this 2-core machine: CI's slow run
@pytest.mark.parametrize("pipeline", ["ppo_copy_digits", "ppo_copy_bits"])
def test_the_multi_discrete_and_multi_binary_pipelines_learn_to_copy(store, pipeline):
    """Eight steps of copying the shown target: the deterministic policy earns the whole 8 (random
    choices: 1.9 for the digits, 4 for the bits)."""
    from pgtorchrl.pipeline.parse import load_spec
    from pgtorchrl.trainers.trainer import train

    result = train(load_spec(ROOT / "pipelines" / f"{pipeline}.yaml"))
    assert result.solved and result.eval_return >= 7.9
