"""ReinforceLoss: its gradient against a hand-computed score-function gradient."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import OneHotCategorical, ProbabilisticActor, ValueOperator

from pgtorchrl.modules.fast_policies import log_prob_and_entropy
from pgtorchrl.objectives.reinforce import ReinforceLoss


def linear_actor(weight):
    """pi(a|s) = softmax(W s): a policy whose score function is known in closed form."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight.data.copy_(weight)
    net = TensorDictModule(linear, in_keys=["observation"], out_keys=["logits"])
    return ProbabilisticActor(
        net,
        in_keys=["logits"],
        distribution_class=OneHotCategorical,
        return_log_prob=True,
        log_prob_key="action_log_prob",
    )


def tiny_batch():
    obs = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 1.0, 1.0]])
    actions = torch.tensor([0, 1, 1])
    advantage = torch.tensor([[2.0], [-1.0], [0.5]])
    return (
        TensorDict(
            {
                "observation": obs,
                "action": nn.functional.one_hot(actions, 2),
                "advantage": advantage,
                "value_target": torch.tensor([[1.0], [2.0], [3.0]]),
            },
            [3],
        ),
        obs,
        actions,
        advantage,
    )


def test_actor_gradient_equals_hand_computed_score_function_gradient():
    W = torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.1]])
    actor = linear_actor(W)
    batch, obs, actions, advantage = tiny_batch()
    out = ReinforceLoss(actor)(batch)
    out["loss_actor"].backward()
    # grad_W log softmax(W s)[a] = (onehot(a) - softmax(W s)) s^T; loss = -mean(logp * A)
    expected = torch.zeros_like(W)
    for s, a, adv in zip(obs, actions, advantage):
        p = torch.softmax(W @ s, dim=0)
        expected -= adv.item() * torch.outer(nn.functional.one_hot(a, 2).float() - p, s)
    expected /= len(obs)
    torch.testing.assert_close(actor.module[0].module.weight.grad, expected)
    # and the loss value itself
    logp = torch.log_softmax(obs @ W.T, -1).gather(-1, actions[:, None])
    torch.testing.assert_close(out["loss_actor"], -(logp * advantage).mean())


def test_critic_free_mode_has_no_critic_loss():
    actor = linear_actor(torch.zeros(2, 3))
    batch, *_ = tiny_batch()
    loss = ReinforceLoss(actor)
    out = loss(batch)
    assert set(out.keys()) == {"loss_actor", "entropy"}
    assert loss.in_keys == ["action", "advantage", "observation"]
    with pytest.raises(RuntimeError, match="has no critic"):
        loss.loss_critic(batch)


def test_critic_loss_and_its_gradient():
    actor = linear_actor(torch.zeros(2, 3))
    critic = ValueOperator(nn.Linear(3, 1), in_keys=["observation"])
    nn.init.zeros_(critic.module.weight)
    nn.init.constant_(critic.module.bias, 1.5)
    batch, *_ = tiny_batch()
    out = ReinforceLoss(actor, critic, critic_coeff=0.5)(batch)
    # V = 1.5 everywhere; targets 1, 2, 3 -> 0.5 * mean((1.5 - y)^2) = 0.5 * (0.25 + 0.25 + 2.25) / 3
    torch.testing.assert_close(out["loss_critic"], torch.tensor(0.5 * 2.75 / 3))
    out["loss_critic"].backward()
    torch.testing.assert_close(critic.module.bias.grad, torch.tensor([0.5 * 2 * (1.5 - 2.0)]))
    assert actor.module[0].module.weight.grad is None  # the critic loss never reaches the actor


@pytest.mark.parametrize("masked", [False, True])
def test_the_critic_objective_is_the_forwards_critic_term(masked):
    """What the extra critic steps minimize (ReinforceLoss.critic_objective, through the contract's
    critic_objective) equals forward's loss_critic in value and gradient, masked batches included."""
    from pgtorchrl.pipeline.contracts import critic_objective

    torch.manual_seed(0)
    actor = linear_actor(torch.randn(2, 3))
    critic = ValueOperator(nn.Linear(3, 1), in_keys=["observation"])
    batch, *_ = tiny_batch()
    if masked:
        batch.set(("collector", "mask"), torch.tensor([True, False, True]))
    loss = ReinforceLoss(actor, critic, critic_coeff=0.7)
    expected = loss(batch)["loss_critic"]
    grad = torch.autograd.grad(expected, list(critic.parameters()))
    got = critic_objective(loss)(batch)
    torch.testing.assert_close(got, expected)
    for g, e in zip(torch.autograd.grad(got, list(critic.parameters())), grad):
        torch.testing.assert_close(g, e)


def test_entropy_bonus():
    actor = linear_actor(torch.zeros(2, 3))  # uniform policy: H = log 2
    batch, *_ = tiny_batch()
    out = ReinforceLoss(actor, entropy_coeff=0.1)(batch)
    torch.testing.assert_close(out["entropy"], torch.tensor(2.0).log())
    torch.testing.assert_close(out["loss_entropy"], -0.1 * torch.tensor(2.0).log())


def test_same_loss_and_gradient_as_torchrl_reinforce_loss():
    from torchrl.objectives import ReinforceLoss as TorchRLReinforceLoss

    W = torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.1]])
    ours_actor, theirs_actor = linear_actor(W), linear_actor(W)
    critic = ValueOperator(nn.Linear(3, 1), in_keys=["observation"])
    batch, *_ = tiny_batch()
    ours = ReinforceLoss(ours_actor)(batch.clone())
    theirs = TorchRLReinforceLoss(theirs_actor, critic, functional=False)(batch.clone())
    torch.testing.assert_close(ours["loss_actor"], theirs["loss_actor"])
    ours["loss_actor"].backward()
    theirs["loss_actor"].backward()
    torch.testing.assert_close(ours_actor.module[0].module.weight.grad, theirs_actor.module[0].module.weight.grad)


def test_set_keys_and_missing_key_message():
    actor = linear_actor(torch.zeros(2, 3))
    batch, *_ = tiny_batch()
    loss = ReinforceLoss(actor)
    loss.set_keys(advantage="my_advantage")
    with pytest.raises(KeyError, match="ReinforceLoss needs 'my_advantage'.*run an advantage module"):
        loss(batch)
    batch["my_advantage"] = batch["advantage"]
    assert "loss_actor" in loss(batch).keys()


def test_rejects_a_deterministic_actor():
    with pytest.raises(TypeError, match="probabilistic actor"):
        ReinforceLoss(TensorDictModule(nn.Linear(3, 2), in_keys=["observation"], out_keys=["action"]))


def test_same_losses_and_gradients_as_torchrl_a2c_loss():
    from torchrl.objectives import A2CLoss

    W = torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.1]])
    critics = []
    for _ in range(2):
        critic = ValueOperator(nn.Linear(3, 1), in_keys=["observation"])
        nn.init.constant_(critic.module.weight, 0.3)
        nn.init.constant_(critic.module.bias, -0.2)
        critics.append(critic)
    ours_actor, theirs_actor = linear_actor(W), linear_actor(W)
    batch, *_ = tiny_batch()
    ours = ReinforceLoss(ours_actor, critics[0], entropy_coeff=0.05, critic_coeff=0.5)(batch.clone())
    theirs = A2CLoss(
        theirs_actor, critics[1], entropy_coeff=0.05, critic_coeff=0.5, loss_critic_type="l2", functional=False
    )(batch.clone())
    torch.testing.assert_close(ours["loss_actor"], theirs["loss_objective"])
    torch.testing.assert_close(ours["loss_entropy"], theirs["loss_entropy"])
    torch.testing.assert_close(ours["loss_critic"], theirs["loss_critic"])
    sum(v for k, v in ours.items() if k.startswith("loss_")).backward()
    sum(v for k, v in theirs.items() if k.startswith("loss_")).backward()
    torch.testing.assert_close(ours_actor.module[0].module.weight.grad, theirs_actor.module[0].module.weight.grad)
    torch.testing.assert_close(critics[0].module.weight.grad, critics[1].module.weight.grad)


@pytest.mark.parametrize("gaussian", [False, True])
def test_the_loss_leaves_the_collected_batch_as_it_was(gaussian):
    """The batch's ``logits`` (or ``loc``/``scale``) are the collecting policy's: ``rollout/``
    metrics read them after the update, so scoring actions under new weights must not overwrite them."""
    from torchrl.data import Bounded

    from pgtorchrl.modules.models import make_gaussian_actor

    torch.manual_seed(0)
    batch, obs, _, _ = tiny_batch()
    if gaussian:
        actor = make_gaussian_actor(3, Bounded(-2.0, 2.0, shape=(1,)), hidden_sizes=[4])
    else:
        actor = linear_actor(torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.1]]))
    with torch.no_grad():
        actor(batch)  # what collection writes: the distribution's parameters, the action's log-prob
        for prm in actor.parameters():
            prm.copy_(torch.randn_like(prm))  # an update happened since
    before = batch.clone()
    loss = ReinforceLoss(actor)
    loss(batch)
    log_prob, _ = log_prob_and_entropy(actor, batch, batch.get("action"))
    assert set(batch.keys(True, True)) == set(before.keys(True, True))
    assert all(torch.equal(batch.get(k), before.get(k)) for k in before.keys(True, True))
    assert not torch.allclose(log_prob, batch.get("action_log_prob"))  # scored under the new weights
