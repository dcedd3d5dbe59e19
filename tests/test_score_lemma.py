"""The expected grad-log-prob lemma, E_{a~pi}[grad log pi(a|s)] = 0, for pgtorchrl's actors.

It is why any baseline that depends on the state alone leaves the policy gradient unbiased.
"""

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, OneHot, Unbounded

from pgtorchrl.modules.models import make_actor

CHUNKS, PER_CHUNK = 40, 500


@pytest.mark.parametrize(
    "action_spec,distribution",
    [
        (OneHot(3), "categorical"),
        (Bounded(-2.0, 2.0, shape=(2,)), "normal"),
        (Bounded(-2.0, 2.0, shape=(2,)), "tanh_normal"),
    ],
)
def test_expected_score_is_zero(action_spec, distribution):
    torch.manual_seed(0)
    actor = make_actor(Unbounded(4), action_spec, hidden_sizes=[8], distribution=distribution)
    observation = torch.randn(1, 4).expand(PER_CHUNK, 4)
    params = [p for p in actor.parameters() if p.requires_grad]
    score, weighted = [], []
    for _ in range(CHUNKS):  # per chunk of fresh samples: the mean score, and the score times f(a)
        with torch.no_grad():
            td = actor(TensorDict({"observation": observation}, [PER_CHUNK]))
        log_prob = actor.get_dist(td).log_prob(td["action"])
        f = td["action"][..., 0].float()  # depends on the action: E[score * f(a)] != 0
        for out, objective in ((score, log_prob.mean()), (weighted, (log_prob * f).mean())):
            grads = torch.autograd.grad(objective, params, retain_graph=True)
            out.append(torch.cat([g.flatten() for g in grads]))
    score, weighted = torch.stack(score), torch.stack(weighted)
    informative = score.std(0) > 1e-6  # parameters the log-prob does not depend on carry no information
    assert informative.sum() > 10
    z = score.mean(0)[informative] / (score.std(0)[informative] / CHUNKS**0.5)
    assert z.abs().max() < 5
    # the same statistic does detect a non-zero mean: an action-dependent weight
    z_biased = weighted.mean(0)[informative] / (weighted.std(0)[informative] / CHUNKS**0.5)
    assert z_biased.abs().max() > 10
