"""pgtorchrl's ClipPPOLoss (a plain-tensor forward) against TorchRL's ClipPPOLoss (the plain path):
the same outputs and the same gradients, bit for bit, for every option the fast path covers, and
TorchRL's own forward wherever it does not apply."""

import itertools

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, OneHot, Unbounded
from torchrl.objectives import ClipPPOLoss as TorchRLClipPPOLoss

from pgtorchrl.modules.models import LOG_PROB_KEY, make_critic, make_discrete_actor, make_gaussian_actor
from pgtorchrl.objectives.ppo import ClipPPOLoss

N_OBS, N = 5, 64


def _nets(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "normal":
        actor = make_gaussian_actor(N_OBS, Bounded(-1.0, 1.0, shape=(3,)), hidden_sizes=[16, 16], init_log_std=0.0)
    else:
        actor = make_discrete_actor(n_obs=N_OBS, n_actions=4, hidden_sizes=[16, 16], spec=OneHot(4))
    return actor, make_critic(Unbounded(N_OBS), hidden_sizes=[16, 16])


def _batch(actor, critic, seed: int = 1) -> TensorDict:
    """A collected minibatch: actions and log-probs of a policy a little older than ``actor``."""
    torch.manual_seed(seed)
    with torch.no_grad():
        batch = critic(actor(TensorDict({"observation": torch.randn(N, N_OBS)}, [N])))
    batch[LOG_PROB_KEY] = batch[LOG_PROB_KEY] + 0.3 * torch.randn(N)  # ratios away from 1: some clip
    batch["state_value"] = batch["state_value"] + 0.3 * torch.randn(N, 1)  # some values clip too
    batch["advantage"], batch["value_target"] = torch.randn(N, 1), torch.randn(N, 1)
    return batch


def _losses_and_grads(loss, batch, params):
    out = loss(batch.clone())
    total = sum(v for k, v in out.items() if k.startswith("loss_"))
    grads = torch.autograd.grad(total, params)
    return out, grads


OPTIONS = list(
    itertools.product(
        ["normal", "categorical"],
        [False, True],  # normalize_advantage
        [None, 0.2],  # clip_value
        [False, True],  # entropy_bonus
        ["l2", "smooth_l1"],
    )
)


@pytest.mark.parametrize("kind,normalize,clip_value,entropy,critic_type", OPTIONS)
def test_the_fast_forward_gives_torchrls_outputs_and_gradients(kind, normalize, clip_value, entropy, critic_type):
    actor, critic = _nets(kind)
    kwargs = dict(
        clip_epsilon=0.2,
        entropy_bonus=entropy,
        entropy_coeff=0.01,
        critic_coeff=0.5,
        loss_critic_type=critic_type,
        normalize_advantage=normalize,
        clip_value=clip_value,
        functional=False,
    )
    ours, theirs = ClipPPOLoss(actor, critic, **kwargs), TorchRLClipPPOLoss(actor, critic, **kwargs)
    for loss in (ours, theirs):
        loss.set_keys(sample_log_prob=LOG_PROB_KEY)
    batch = _batch(actor, critic)
    assert ours.fast_path(batch)
    params = [*actor.parameters(), *critic.parameters()]
    out, grads = _losses_and_grads(ours, batch, params)
    expected, expected_grads = _losses_and_grads(theirs, batch, params)
    assert list(out.keys()) == list(expected.keys())
    for key in expected.keys():
        assert out[key].shape == expected[key].shape, key
        torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0, msg=key)
    assert 0 < float(expected["clip_fraction"]) < 1  # the batch exercises the clipped branch
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_cases_the_fast_path_does_not_cover_take_torchrls_forward():
    actor, critic = _nets("normal")
    batch = _batch(actor, critic)
    functional = ClipPPOLoss(actor, critic, functional=True)
    functional.set_keys(sample_log_prob=LOG_PROB_KEY)
    assert not functional.fast_path(batch)  # TorchRL's functional parameters: its own path
    plain = ClipPPOLoss(actor, critic, functional=False)
    plain.set_keys(sample_log_prob=LOG_PROB_KEY)
    masked = batch.clone()
    masked["shifted_valid"] = torch.ones(N, dtype=torch.bool)
    assert plain.fast_path(batch) and not plain.fast_path(masked)
    assert not plain.fast_path(batch.exclude("advantage"))  # TorchRL's value estimator writes it
    theirs = TorchRLClipPPOLoss(actor, critic, functional=True)
    theirs.set_keys(sample_log_prob=LOG_PROB_KEY)
    out, expected = functional(batch.clone()), theirs(batch.clone())
    for key in expected.keys():
        torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0, msg=key)


def test_a_shared_trunk_is_encoded_once_with_torchrls_outputs_and_gradients():
    """Actor and critic over one CNN (critic.share_encoder): the fast forward runs the encoder once
    per minibatch (TorchRL's runs it for each network) and gives TorchRL's outputs exactly and its
    gradients up to the order in which the two heads' gradients are summed."""
    from torchrl.data import Composite

    from pgtorchrl.modules.encoders import ConvEncoder
    from pgtorchrl.modules.models import make_actor
    from pgtorchrl.modules.shared_encoder import share_encoder

    torch.manual_seed(0)
    spec = Composite(pixels=Bounded(0, 255, shape=(4, 12, 12), dtype=torch.uint8))
    actor = make_actor(spec, OneHot(3), in_keys=["pixels"], hidden_sizes=[], activation="relu")
    critic = make_critic(spec, in_keys=["pixels"], hidden_sizes=[], activation="relu")
    share_encoder(actor, critic)
    kwargs = dict(clip_epsilon=0.1, entropy_coeff=0.01, critic_coeff=0.5, clip_value=0.1, functional=False)
    ours, theirs = ClipPPOLoss(actor, critic, **kwargs), TorchRLClipPPOLoss(actor, critic, **kwargs)
    for loss in (ours, theirs):
        loss.set_keys(sample_log_prob=LOG_PROB_KEY)
    with torch.no_grad():
        batch = critic(actor(TensorDict({"pixels": torch.randint(0, 256, (N, 4, 12, 12), dtype=torch.uint8)}, [N])))
    batch[LOG_PROB_KEY] = batch[LOG_PROB_KEY] + 0.3 * torch.randn(N)
    batch["advantage"], batch["value_target"] = torch.randn(N, 1), torch.randn(N, 1)
    assert ours.fast_path(batch)

    calls = []
    encoder = next(m for m in actor.modules() if isinstance(m, ConvEncoder))
    encoder.register_forward_hook(lambda *_: calls.append(1))
    params = list({id(p): p for p in [*actor.parameters(), *critic.parameters()]}.values())
    out, grads = _losses_and_grads(ours, batch, params)
    assert len(calls) == 1  # one pass of the CNN for both heads
    expected, expected_grads = _losses_and_grads(theirs, batch, params)
    assert len(calls) == 3  # TorchRL's: the actor's, then the critic's
    for key in expected.keys():
        torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0, msg=key)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)
