"""Batched environments written in torch, with a tensor-level fast path for rollouts.

A :class:`TorchNativeEnv` is an ordinary TorchRL :class:`~torchrl.envs.EnvBase` (a spec can name
it, a ``Collector`` can drive it, ``check_env_specs`` passes) whose dynamics are two methods on
plain tensors: :meth:`reset_tensors` and :meth:`step_tensors`. TorchRL's ``_reset``/``_step``
wrap them in TensorDicts; :func:`pgtorchrl.collectors.rollout.first_episodes` calls them directly and
builds one TensorDict per batch instead of one per step, which removes most per-step overhead
for small, fast envs. The fast path may step an env past the end of its episode: such steps are
masked out, so ``step_tensors`` must accept them.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, OneHot, Unbounded
from torchrl.envs import EnvBase

__all__ = ["TorchNativeEnv", "policy_inputs"]


def policy_inputs(step: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the policy sees after a :meth:`TorchNativeEnv.step_tensors` output: all of it but
    the reward."""
    return {k: v for k, v in step.items() if k != "reward"}


class TorchNativeEnv(EnvBase):
    """Base class: implement :meth:`reset_tensors` and :meth:`step_tensors`.

    Both return a ``dict`` of tensors shaped ``[num_envs, ...]`` holding every observation key
    and ``done``/``terminated``/``truncated`` (``[num_envs, 1]`` booleans); ``step_tensors``
    adds ``reward``. Envs should also write ``step_count`` and ``episode_reward`` (the keys
    TorchRL's ``StepCounter``/``RewardSum`` write), which the ``rollout/`` metrics read.
    """

    batch_locked = True
    _state_attrs: tuple[str, ...] = ()
    """The tensor attributes that hold the envs' dynamic state (what a checkpoint saves)."""
    _step_attrs: tuple[str, ...] = ()
    """Other attributes set at every step that are no parameter, buffer or module (a cache)."""

    def __setattr__(self, name: str, value) -> None:
        if name in self._state_attrs or name in self._step_attrs:
            # set at every step: skip nn.Module's bookkeeping (2-9 us here) for a plain value
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The envs' dynamic state, and the random generator's if the env has one."""
        state = {name: getattr(self, name).clone() for name in self._state_attrs}
        generator = getattr(self, "_generator", None)
        if generator is not None:
            state["_generator"] = generator.get_state()
        return state

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        """Restores what :meth:`state_tensors` returned."""
        for name, value in state.items():
            if name == "_generator":
                self._generator.set_state(value)
            else:
                setattr(self, name, value.to(self.device))

    def _standard_specs(self, n_actions: int, **observations: tuple[int | tuple[int, ...], torch.dtype]) -> None:
        """Specs of a batched env with one-hot actions, a scalar reward, the three done flags,
        the given observation keys (``name=(size, dtype)``, ``size`` a length or a shape such as
        an image's ``(H, W, C)``) plus ``step_count`` and ``episode_reward``."""
        shape, device = tuple(self.batch_size), self.device
        entries = {
            name: Unbounded(shape=(*shape, *((size,) if isinstance(size, int) else size)), dtype=dtype, device=device)
            for name, (size, dtype) in observations.items()
        }
        entries["step_count"] = Unbounded(shape=(*shape, 1), dtype=torch.int64, device=device)
        entries["episode_reward"] = Unbounded(shape=(*shape, 1), device=device)
        self.observation_spec = Composite(entries, shape=shape, device=device)
        self.action_spec = OneHot(n_actions, shape=(*shape, n_actions), device=device)
        self.reward_spec = Unbounded(shape=(*shape, 1), device=device)
        flag = Categorical(2, shape=(*shape, 1), dtype=torch.bool, device=device)
        self.done_spec = Composite(
            done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=shape, device=device
        )

    def reset_tensors(self, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Resets the envs where ``mask`` (``[num_envs]`` bool) is true, all if ``None``, and
        returns every env's current observation (the others unchanged, not done)."""
        raise NotImplementedError

    def step_tensors(self, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """Applies ``action`` to every env and returns the next observations, reward and flags."""
        raise NotImplementedError

    def reset_finished(self, step: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the policy sees after ``step`` (a :meth:`step_tensors` output): the envs that
        finished start over, the others carry on (the reward left out).

        On CPU the reset runs only when some env is done. On an accelerator it always runs,
        masked: asking whether any env is done would make the host wait for the device at every
        step, while a masked reset is a few queued kernels.
        """
        if self.device.type != "cpu" or self._any_done(step):
            return self.reset_tensors(step["done"].reshape(-1))  # every env's current observation
        return policy_inputs(step)

    def _any_done(self, step: dict[str, torch.Tensor]) -> bool:
        """Whether any env of ``step`` is done (on CPU; an env that knows it already may say so cheaper)."""
        return bool(step["done"].any())

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is not None:
            mask = mask.reshape(-1)
        return TensorDict(self.reset_tensors(mask), batch_size=self.batch_size, device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        out = self.step_tensors(tensordict.get(self.action_key))
        return TensorDict(out, batch_size=self.batch_size, device=self.device)
