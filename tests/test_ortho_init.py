"""ortho_init: CleanRL's and stable-baselines3's orthogonal initialization of actors and critics."""

import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, OneHot, Unbounded

from pgtorchrl.components import ACTORS, CRITICS
from pgtorchrl.modules.models import make_actor, make_critic

MINATAR = dict(channels=[16], kernel_sizes=[3], strides=[1], out_features=128, hidden_sizes=[], ortho_init=True)


def _layers(module):
    return [m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def _gain(weight: torch.Tensor) -> float:
    """The gain g of an orthogonal matrix W scaled by g: the singular values of W all equal g."""
    singular = torch.linalg.svdvals(weight.detach().flatten(1))
    assert torch.allclose(singular, singular[0].expand_as(singular), rtol=1e-4), "not a scaled orthogonal matrix"
    return float(singular[0])


@pytest.mark.parametrize("section", ["cnn", "mlp"])
def test_the_spec_field_gives_cleanrls_gains_and_zero_biases_to_actor_and_critic(section):
    from types import SimpleNamespace

    if section == "cnn":
        spec, fields = Composite(pixels=Bounded(0, 1, shape=(10, 10, 4), dtype=torch.bool)), MINATAR
    else:
        spec, fields = Composite(observation=Unbounded(6)), dict(hidden_sizes=[32, 16], ortho_init=True)
    env = SimpleNamespace(observation_spec=spec, action_spec=OneHot(3))
    torch.manual_seed(0)
    actor = ACTORS.build(ACTORS[section].model(name=section, **fields), env)
    critic = CRITICS.build(CRITICS[section].model(name=section, **fields), env)
    for module, head_gain in ((actor, 0.01), (critic, 1.0)):
        layers = _layers(module)
        assert len(layers) >= 3
        assert [round(_gain(m.weight), 4) for m in layers] == [round(math.sqrt(2), 4)] * (len(layers) - 1) + [head_gain]
        assert all(float(m.bias.abs().max()) == 0.0 for m in layers)
    # the initial policy is nearly uniform: the head's logits are about 100 times smaller
    obs = spec.rand((256,)).float() if section == "mlp" else spec.rand((256,))
    logits = actor(TensorDict(dict(obs.items()), [256]))["logits"]
    assert float(logits.abs().max()) < 0.05


def test_without_it_the_networks_keep_pytorchs_default_initialization():
    spec = Composite(observation=Unbounded(6))
    torch.manual_seed(0)
    default = make_actor(spec, OneHot(3), hidden_sizes=[32])
    torch.manual_seed(0)
    unset = make_actor(spec, OneHot(3), hidden_sizes=[32], ortho_init=False)
    torch.manual_seed(0)
    ortho = make_actor(spec, OneHot(3), hidden_sizes=[32], ortho_init=True)
    for a, b, c in zip(_layers(default), _layers(unset), _layers(ortho)):
        assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert float(_layers(default)[0].bias.abs().max()) > 0  # PyTorch's default bias is not zero


def test_a_gaussian_actor_keeps_its_log_std_and_a_critic_its_value_head_gain_1():
    actor = make_actor(
        Unbounded(4), Bounded(-1.0, 1.0, shape=(2,)), hidden_sizes=[8], init_log_std=-0.5, ortho_init=True
    )
    log_std = [p for n, p in actor.named_parameters() if n.endswith("log_std")]
    assert len(log_std) == 1 and torch.equal(log_std[0], torch.full((2,), -0.5))
    assert round(_gain(_layers(actor)[-1].weight), 4) == 0.01
    critic = make_critic(Unbounded(4), hidden_sizes=[8], ortho_init=True)
    assert round(_gain(_layers(critic)[-1].weight), 4) == 1.0


def test_the_same_seed_gives_the_same_network_whatever_the_thread_count():
    """The QR behind the orthogonal matrices rounds differently on 1 and 2 threads (3e-7 on this
    CNN's 128x1600 layer), which broke resuming a MinAtar run in a process whose thread count
    differed from the CLI's: the networks must not depend on it."""
    from types import SimpleNamespace

    spec = Composite(pixels=Bounded(0, 1, shape=(10, 10, 4), dtype=torch.bool))
    env = SimpleNamespace(observation_spec=spec, action_spec=OneHot(3))
    threads = torch.get_num_threads()
    weights = []
    try:
        for n in (4, 1):
            torch.set_num_threads(n)
            torch.manual_seed(0)
            actor = ACTORS.build(ACTORS["cnn"].model(name="cnn", **MINATAR), env)
            weights.append([m.weight.clone() for m in _layers(actor)])
            assert torch.get_num_threads() == n  # the caller's thread count is kept
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*weights))
