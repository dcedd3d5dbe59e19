"""The public API's deprecation rule (CHANGELOG.md): a renamed keyword keeps working for one minor
version, warns with its replacement and the release that removes it, and cannot be mixed with it."""

import pytest
import torch
from torchrl.data import Bounded

from pgtorchrl import make_discrete_actor, make_gaussian_actor


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: make_discrete_actor(3, 2, hidden_sizes=[8], **kw),
        lambda **kw: make_gaussian_actor(3, Bounded(-1.0, 1.0, shape=(2,)), hidden_sizes=[8], **kw),
    ],
    ids=["make_discrete_actor", "make_gaussian_actor"],
)
def test_observation_key_still_builds_the_same_actor_with_a_deprecation_warning(make):
    torch.manual_seed(0)
    with pytest.warns(
        DeprecationWarning,
        match=r"\(observation_key=\.\.\.\) is deprecated since 0\.1\.0 and will be removed in 0\.2\.0: "
        r"use in_keys=\.\.\. instead",
    ):
        old = make(observation_key="obs")
    torch.manual_seed(0)
    new = make(in_keys=["obs"])
    assert old.in_keys == new.in_keys == ["obs"]
    for a, b in zip(old.parameters(), new.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(TypeError, match="got both observation_key= .deprecated. and in_keys=: pass only in_keys="):
        make(observation_key="obs", in_keys=["obs"])
