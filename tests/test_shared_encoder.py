"""A shared actor-critic trunk (``critic.share_encoder``, pgtorchrl.modules.shared_encoder): one
encoder in both networks, stepped once per update as CleanRL's one-optimizer agent steps it, never
by the critic's own optimizer; refused in one line where there is nothing to share."""

import copy
from pathlib import Path

import pytest
import torch
from torch.nn.utils import clip_grad_norm_

from pgtorchrl.cli import main
from pgtorchrl.modules.shared_encoder import encoded_module
from pgtorchrl.pipeline.build import build_pipeline
from pgtorchrl.pipeline.parse import load_spec
from pgtorchrl.trainers import trainer

ROOT = Path(__file__).resolve().parents[1]
MINATAR = ROOT / "pipelines" / "ppo_minatar_breakout.yaml"
SMALL = ["env.num_envs=2", "collector.frames_per_batch=64", "critic.share_encoder=true"]


def _batch(p):
    collector = p.make_collector()
    batch = next(iter(collector))
    collector.shutdown()
    p.advantage(batch)
    return batch.reshape(-1)


def _unique(*modules):
    seen, params = set(), []
    for module in modules:
        for param in module.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                params.append(param)
    return params


@pytest.fixture
def shared():
    pytest.importorskip("minatar")
    return build_pipeline(load_spec(MINATAR, SMALL))


def test_the_critic_reads_the_actors_encoder_and_its_optimizer_steps_only_its_head(shared):
    p = shared
    encoder = encoded_module(p.actor, "actor").encoder
    assert encoded_module(p.critic, "critic").encoder is encoder
    trunk = {id(q) for q in encoder.parameters()}
    critic_stepped = {id(q) for group in p.critic_optim.param_groups for q in group["params"]}
    actor_stepped = {id(q) for group in p.actor_optim.param_groups for q in group["params"]}
    assert trunk <= actor_stepped and not trunk & critic_stepped
    assert actor_stepped | critic_stepped == {id(q) for q in _unique(p.actor, p.critic)}  # every weight, once
    assert p.shares_encoder


SGD = ["optim={name: sgd, lr: 0.1}", "critic_optim={name: sgd, lr: 0.1}", "train.max_grad_norm=0.01"]


@pytest.mark.parametrize(
    "overrides, optimizer",
    [
        ([], lambda params, spec: torch.optim.Adam(params, lr=spec.optim.lr, eps=spec.optim.eps)),
        (SGD, lambda params, spec: torch.optim.SGD(params, lr=spec.optim.lr)),  # where the clip shows
    ],
    ids=["adam", "sgd_clipped"],
)
@pytest.mark.parametrize(
    "joint",
    [["critic.share_encoder=true"], ["train.joint_grad_norm=true"]],
    ids=["shared_trunk", "joint_grad_norm"],
)
def test_an_update_is_one_step_of_the_joint_loss_with_one_clipped_norm(overrides, optimizer, joint):
    """CleanRL's agent: one optimizer over every parameter, the loss's terms summed, the norm of
    all gradients clipped together; so is an update of two networks with ``train.joint_grad_norm``
    (SB3's clipping). Two optimizers stepping the trunk (Adam: two steps) or two separate clips
    (SGD under a small max_grad_norm) give other weights."""
    pytest.importorskip("minatar")
    p = build_pipeline(load_spec(MINATAR, [*SMALL[:2], *joint, *overrides]))
    batch = _batch(p)
    reference_actor, reference_critic = copy.deepcopy(p.actor), copy.deepcopy(p.critic)
    reference = build_pipeline(p.spec)  # its own networks and loss, given the same weights
    reference.actor.load_state_dict(reference_actor.state_dict())
    reference.critic.load_state_dict(reference_critic.state_dict())
    params = _unique(reference.actor, reference.critic)
    optim = optimizer(params, p.spec)
    losses = reference.loss(batch.clone())
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
    clip_grad_norm_(params, p.spec.train.max_grad_norm)
    optim.step()

    trainer.gradient_step(p, batch.clone(), 1, 64)
    for ours, theirs in zip(_unique(p.actor, p.critic), params):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)
    moved = [
        not torch.equal(a, b) for a, b in zip(_unique(p.actor, p.critic), _unique(reference_actor, reference_critic))
    ]
    assert all(moved)  # the trunk included: it learned from the update


def test_the_value_loss_reaches_the_trunk_but_extra_critic_steps_leave_it(shared):
    p = shared
    batch = _batch(p)
    encoder = encoded_module(p.actor, "actor").encoder
    p.loss(batch.clone())["loss_critic"].backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in encoder.parameters())  # the joint loss trains it
    before = [q.detach().clone() for q in encoder.parameters()]
    head = [q.detach().clone() for q in p.critic_params]
    trainer._critic_steps(p, batch.clone(), 2, 1, 64)
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(head, p.critic_params))


@pytest.mark.parametrize(
    "spec, overrides, message",
    [
        (
            "ppo_cartpole",
            ["critic.share_encoder=true"],
            "critic.share_encoder: the actor has no observation encoder to share (its inputs are flat float "
            "vectors, read by the MLP itself): set share_encoder: false",
        ),
        (
            "ppo_minatar_breakout",
            ["critic.share_encoder=true", "critic.out_features=64"],
            "critic.share_encoder: the critic's encoder differs from the actor's (its convolutions or "
            "out_features): give the critic section the actor's, or leave them at their defaults in both",
        ),
    ],
)
def test_nothing_to_share_is_a_one_line_error(store, capsys, spec, overrides, message):
    if "minatar" in spec:
        pytest.importorskip("minatar")
    path = ROOT / "pipelines" / f"{spec}.yaml"
    assert main([str(path), *overrides, "train.total_frames=64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pgtorchrl: error: {path}: {message}", err
