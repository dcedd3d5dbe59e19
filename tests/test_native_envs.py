"""The step contract of the native envs that the fast-path collector relies on.

After each step the collector calls ``reset_finished``: on CPU it resets only when some env is
done; on a GPU it always resets, masked, so that the host never waits for the device to say
whether any env is done. Both must hand the policy the same observations.
"""

import pytest
import torch

from pgtorchrl.envs.custom.cartpole import TorchCartPoleEnv
from pgtorchrl.envs.custom.short_corridor import make_short_corridor
from pgtorchrl.envs.gym_native import GymNativeEnv

ENVS = {
    "torch_cartpole": lambda n: TorchCartPoleEnv(n),
    "short_corridor": lambda n: make_short_corridor(n),
    "gym_native": lambda n: GymNativeEnv("CartPole-v1", n),
}


@pytest.mark.parametrize("name", ENVS)
def test_the_always_masked_reset_of_a_gpu_gives_what_the_cpu_path_gives(name):
    n = 6
    env = ENVS[name](n)
    env.set_seed(0)
    env.reset_tensors(None)
    generator = torch.Generator().manual_seed(0)
    seen = {"none done": 0, "some done": 0}
    for _ in range(80):
        action = torch.nn.functional.one_hot(torch.randint(2, (n,), generator=generator), 2)
        step = env.step_tensors(action)
        done = step["done"].reshape(-1)
        before = env.state_tensors()
        cpu = env.reset_finished(step)  # this env is on the CPU: resets only if some env is done
        after_cpu = env.state_tensors()
        env.load_state_tensors(before)
        gpu = env.reset_tensors(done)  # what reset_finished does on an accelerator
        assert cpu.keys() == gpu.keys() == step.keys() - {"reward"}
        for key in cpu:
            torch.testing.assert_close(gpu[key], cpu[key], rtol=0, atol=0, msg=key)
        assert not gpu["done"].any() and (gpu["step_count"][done] == 0).all()
        # the envs are left in the same state; only the random generator differs (a reset draws start
        # states for every env), so a GPU run's stream of start states is its own
        for key, value in env.state_tensors().items():
            if key not in ("envs", "_generator"):
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(after_cpu[key])), key
        seen["some done" if done.any() else "none done"] += 1
    assert min(seen.values()) > 0, seen
