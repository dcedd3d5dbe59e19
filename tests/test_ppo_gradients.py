"""pgtorchrl's ClipPPOLoss.forward_backward: the gradients written by hand
(pgtorchrl/objectives/ppo_gradients.py) against autograd's on the same loss, for every option the
analytic path covers, and autograd itself wherever it does not apply."""

import itertools

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, OneHot, Unbounded

from pgtorchrl.modules.models import LOG_PROB_KEY, make_critic, make_discrete_actor, make_gaussian_actor
from pgtorchrl.objectives.ppo import ClipPPOLoss

N_OBS, N = 5, 64


def _nets(kind: str, activation: str = "tanh", seed: int = 0):
    torch.manual_seed(seed)
    hidden = [16, 16]
    if kind == "normal":
        action = Bounded(-1.0, 1.0, shape=(3,))
        actor = make_gaussian_actor(N_OBS, action, hidden_sizes=hidden, activation=activation, init_log_std=-0.3)
    else:
        actor = make_discrete_actor(N_OBS, 4, hidden_sizes=hidden, activation=activation, spec=OneHot(4))
    return actor, make_critic(Unbounded(N_OBS), hidden_sizes=hidden, activation=activation)


def _batch(actor, critic, seed: int = 1) -> TensorDict:
    """A collected minibatch of a policy a little older than ``actor``: some ratios and values
    clip, and (as in every real minibatch) the others tie with their clipped copies."""
    torch.manual_seed(seed)
    with torch.no_grad():
        batch = critic(actor(TensorDict({"observation": torch.randn(N, N_OBS)}, [N])))
    batch[LOG_PROB_KEY] = batch[LOG_PROB_KEY] + 0.3 * torch.randn(N)
    batch["state_value"] = batch["state_value"] + 0.3 * torch.randn(N, 1)
    batch["advantage"], batch["value_target"] = torch.randn(N, 1), 2 * torch.randn(N, 1)
    return batch


def _loss(actor, critic, **kwargs) -> ClipPPOLoss:
    loss = ClipPPOLoss(actor, critic, functional=False, **kwargs)
    loss.set_keys(sample_log_prob=LOG_PROB_KEY)
    return loss


def _autograd(loss, batch, params):
    out = loss(batch.clone())
    grads = torch.autograd.grad(sum(v for k, v in out.items() if k.startswith("loss_")), params)
    return out, grads


def _forward_backward(loss, batch, params):
    for p in params:
        p.grad = None
    out = loss.forward_backward(batch.clone())
    return out, [p.grad for p in params]


OPTIONS = list(
    itertools.product(
        ["normal", "categorical"],
        [False, True],  # normalize_advantage
        [None, 0.2],  # clip_value
        [False, True],  # entropy_bonus
        ["l2", "smooth_l1", "l1"],
        ["tanh", "relu"],
    )
)


@pytest.mark.parametrize("kind,normalize,clip_value,entropy,critic_type,activation", OPTIONS)
def test_the_gradients_by_hand_are_autograds(kind, normalize, clip_value, entropy, critic_type, activation):
    actor, critic = _nets(kind, activation)
    loss = _loss(
        actor,
        critic,
        clip_epsilon=0.2,
        entropy_bonus=entropy,
        entropy_coeff=0.01,
        critic_coeff=0.5,
        loss_critic_type=critic_type,
        normalize_advantage=normalize,
        clip_value=clip_value,
    )
    batch = _batch(actor, critic)
    assert loss.analytic_path(batch)
    params = [*actor.parameters(), *critic.parameters()]
    expected, expected_grads = _autograd(loss, batch, params)
    out, grads = _forward_backward(loss, batch, params)
    assert 0 < float(expected["clip_fraction"]) < 1  # both branches of the surrogate
    if clip_value is not None:
        assert 0 < float(expected["value_clip_fraction"]) < 1
    assert list(out.keys()) == list(expected.keys())
    for key in expected.keys():  # the forward is the same computation: the same numbers
        torch.testing.assert_close(out[key], expected[key].detach(), rtol=0, atol=0, msg=key)
    for p, got, want in zip(params, grads, expected_grads, strict=True):
        assert got is not None and got.shape == p.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    grads = [g.clone() for g in grads]
    selected, selected_grads = _forward_backward(loss, batch.select(*loss.minibatch_keys(batch)), params)
    for key in out.keys():  # a minibatch of only the keys it reads: the same numbers
        torch.testing.assert_close(selected[key], out[key], rtol=0, atol=0, msg=key)
    for got, want in zip(selected_grads, grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_gradients_accumulate_into_existing_ones_as_backward_does():
    actor, critic = _nets("normal")
    loss = _loss(actor, critic, clip_value=0.2, entropy_coeff=0.01)
    batch = _batch(actor, critic)
    params = [*actor.parameters(), *critic.parameters()]
    _, once = _forward_backward(loss, batch, params)
    once = [g.clone() for g in once]
    loss.forward_backward(batch.clone())  # a second call adds its gradient
    for p, g in zip(params, once, strict=True):
        torch.testing.assert_close(p.grad, 2 * g)


def test_cases_the_analytic_path_does_not_cover_take_autograd():
    from torchrl.data import Composite

    from pgtorchrl.modules.models import make_actor
    from pgtorchrl.modules.shared_encoder import share_encoder

    actor, critic = _nets("normal")
    batch = _batch(actor, critic)
    params = [*actor.parameters(), *critic.parameters()]
    off = _loss(actor, critic, analytic_gradients=False)
    assert _loss(actor, critic).analytic_path(batch) and not off.analytic_path(batch)
    assert not _loss(actor, critic).analytic_path(batch.reshape(8, 8))  # a [envs, T] batch: not flat
    assert not _loss(actor, critic).analytic_path(batch.exclude("advantage"))  # not even the fast forward
    assert off.minibatch_keys(batch) is None and _loss(actor, critic).minibatch_keys(batch.exclude("advantage")) is None
    _, expected = _autograd(off, batch, params)
    _, got = _forward_backward(off, batch, params)
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=0, atol=0)  # autograd itself

    torch.manual_seed(0)  # a CNN trunk the two heads share: autograd
    spec = Composite(pixels=Bounded(0, 255, shape=(4, 12, 12), dtype=torch.uint8))
    actor = make_actor(spec, OneHot(3), in_keys=["pixels"], hidden_sizes=[], activation="relu")
    critic = make_critic(spec, in_keys=["pixels"], hidden_sizes=[], activation="relu")
    share_encoder(actor, critic)
    with torch.no_grad():
        pixels = torch.randint(0, 256, (N, 4, 12, 12), dtype=torch.uint8)
        batch = critic(actor(TensorDict({"pixels": pixels}, [N])))
    batch["advantage"], batch["value_target"] = torch.randn(N, 1), torch.randn(N, 1)
    loss = _loss(actor, critic)
    assert loss.fast_path(batch) and not loss.analytic_path(batch) and loss.minibatch_keys(batch) is None
    params = list({id(p): p for p in [*actor.parameters(), *critic.parameters()]}.values())
    _, expected = _autograd(loss, batch, params)
    _, got = _forward_backward(loss, batch, params)
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=0, atol=0)
