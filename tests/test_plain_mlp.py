"""Policies' MLPs called as plain maths (:mod:`pgtorchrl.modules.plain_mlp`,
:func:`pgtorchrl.modules.fast_policies.plain_network`) give what the module call gives, bit for bit,
follow updates of the parameters, and leave every other network to its module."""

import pytest
import torch
from torch import nn
from torchrl.data import Bounded, Composite, OneHot, Unbounded
from torchrl.envs import ExplorationType
from torchrl.modules import NoisyLinear

from pgtorchrl.modules.fast_policies import PolicyStep, categorical_logits_net, gaussian_net, plain_network
from pgtorchrl.modules.models import GaussianHead, make_actor
from pgtorchrl.modules.plain_mlp import mlp_layers, mlp_output

OBS = Composite(observation=Unbounded(17))


def _actors():
    torch.manual_seed(0)
    box, discrete = Bounded(-1.0, 1.0, shape=(6,)), OneHot(4)
    return {  # the MuJoCo pipelines' actor, a ReLU one, a categorical one, an orthogonally initialized one
        "gaussian_tanh_64_64": make_actor(OBS, box, hidden_sizes=[64, 64], activation="tanh"),
        "gaussian_relu_32": make_actor(OBS, box, hidden_sizes=[32], activation="relu"),
        "categorical_tanh_64_64": make_actor(OBS, discrete, hidden_sizes=[64, 64]),
        "categorical_ortho": make_actor(OBS, discrete, hidden_sizes=[64, 64], ortho_init=True),
    }


@pytest.mark.parametrize("name", list(_actors()))
@pytest.mark.parametrize("rows", [1, 64])
def test_the_plain_forward_is_the_modules_bit_for_bit(name, rows):
    actor = _actors()[name]
    net = gaussian_net(actor) or categorical_logits_net(actor)
    forward = plain_network(net)
    assert forward is not net.module  # it applies to every shipped MLP policy
    x = torch.randn(rows, 17)
    with torch.no_grad():
        expected, got = net.module(x), forward(x)
    for a, b in zip(
        expected if isinstance(expected, tuple) else (expected,), got if isinstance(got, tuple) else (got,)
    ):
        assert a.shape == b.shape and torch.equal(a, b)


def test_the_plain_forward_reads_the_parameters_as_they_are_now():
    actor = _actors()["gaussian_tanh_64_64"]
    net = gaussian_net(actor)
    forward = plain_network(net)
    x = torch.randn(3, 17)
    with torch.no_grad():
        before = forward(x)
        for p in net.module.parameters():  # an optimizer step changes them in place
            p.add_(0.1)
        after, expected = forward(x), net.module(x)
    assert not torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])
    assert torch.equal(after[0], expected[0]) and torch.equal(after[1], expected[1])


def test_a_policy_step_on_the_plain_forward_acts_as_on_the_module():
    actor = _actors()["gaussian_tanh_64_64"]
    obs = {"observation": torch.randn(1, 17)}
    runs = []
    for plain in (True, False):
        step = PolicyStep(actor, 8, ExplorationType.RANDOM, torch.Size([1]), "cpu")
        if not plain:
            step.forward = step.net.module  # the path it replaces
        torch.manual_seed(1)  # the same noise
        with torch.no_grad():
            runs.append([step(obs) for _ in range(10)])  # past the first noise refill
    for a, b in zip(*runs):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_other_networks_keep_their_module_call():
    actor = _actors()["gaussian_tanh_64_64"]
    net = gaussian_net(actor)
    handle = net.module.net[0].register_forward_hook(lambda *args: None)
    assert plain_network(net) is net.module  # a hook must see its call
    handle.remove()
    assert plain_network(net) is not net.module
    not_mlp = [
        nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)),
        nn.Sequential(nn.Tanh(), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 2, bias=False)),
        nn.Linear(4, 2),
    ]
    for module in not_mlp:
        assert mlp_layers(module) is None, module
        assert mlp_layers(GaussianHead(module, 2).net) is None
    noisy = nn.Sequential(NoisyLinear(4, 4), nn.Tanh(), nn.Linear(4, 2))  # an nn.Linear subclass: its own forward
    assert mlp_layers(noisy) is None

    class Scaled(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    assert mlp_layers(Scaled(nn.Linear(4, 2))) is None
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)  # every module's
    assert plain_network(net) is net.module
    handle.remove()
    frozen = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)).requires_grad_(False)
    assert mlp_layers(frozen) is not None and mlp_layers(frozen, trainable=True) is None


def test_the_tape_holds_each_linear_input_and_activation_output():
    layers = mlp_layers(nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1)))
    x, tape = torch.randn(7, 3), []
    out = mlp_output(layers, x, tape)
    h1 = torch.tanh(layers[0](x))
    h2 = torch.relu(layers[2](h1))
    expected = [x, h1, h1, h2, h2]
    assert len(tape) == 5 and all(torch.equal(a, b) for a, b in zip(tape, expected))
    assert torch.equal(out, layers[4](h2))
