"""Running-statistics normalization for the native gymnasium env (``gym_native``).

The references the MuJoCo pipelines follow (CleanRL's ``NormalizeObservation`` and
``NormalizeReward``, Tianshou's ``obs_norm``, stable-baselines3's ``VecNormalize``) all use OpenAI
baselines' ``RunningMeanStd``: the exact mean and variance of everything seen so far, combined
batch by batch (Chan et al.'s parallel update). Observations become
``clip((obs - mean) / sqrt(var + eps), -c, c)``; rewards are divided by the running standard
deviation of the discounted return. TorchRL's ``VecNormV2`` (env ``gym``) keeps exponential moving
averages instead and costs a TensorDict transform per step; these are the references' statistics,
on the numpy arrays :class:`~pgtorchrl.envs.gym_native.GymNativeEnv` already holds (a few
microseconds per step).

:class:`RunningObservationNorm` speaks the transform protocol of :mod:`pgtorchrl.envs.gym`:
``state_dict``/``load_state_dict`` (tensors: checkpoints and the ``model/env_transforms.pt``
artifact), ``freeze`` (evaluation uses the training statistics as they stand) and
``to_observation_norm`` (the frozen TorchRL transform ``load_actor`` puts in front of a loaded
actor, so it acts on raw observations). :class:`RunningRewardScale` is training-only env state
(checkpointed with the env): the policy never sees rewards.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["RunningMeanStd", "RunningObservationNorm", "RunningRewardScale"]


def _clipped(x: np.ndarray, clip: float | None) -> np.ndarray:
    """``x`` in ``[-clip, clip]`` (as is for ``None``), as float32 (np.clip costs twice this on small arrays)."""
    if clip is not None:
        x = np.minimum(np.maximum(x, -clip), clip)
    return x.astype(np.float32)


def _mean_and_var(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x.mean(0)`` and ``x.var(0)``, the mean summed once: the ufuncs of numpy's
    ``_methods._mean`` and ``_var`` in their order (sums in ``x``'s dtype, divided by an ``intp``
    count into that dtype), so the same bits (``tests/test_normalization.py``), without their Python
    around them (10 us against 19 for an [8, 17] float32 batch here, twice per step of 8 MuJoCo envs)."""
    count = np.intp(len(x))
    mean = np.add.reduce(x, 0)
    mean = np.true_divide(mean, count, out=mean, casting="unsafe")
    centred = x - mean
    centred = np.multiply(centred, centred, out=centred)
    var = np.add.reduce(centred, 0)
    return mean, np.true_divide(var, count, out=var, casting="unsafe")


class RunningMeanStd:
    """The mean and variance of every row passed to :meth:`update` (baselines' ``RunningMeanStd``,
    with its prior count of 1e-4: the first batch does not divide by zero).

    Examples:
        >>> stats = RunningMeanStd(2)
        >>> stats.update(np.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> np.round(stats.mean, 3).tolist(), np.round(stats.var, 3).tolist()
        ([1.0, 2.0], [1.0, 1.0])
    """

    def __init__(self, size: int):
        self.count = 1e-4
        self.mean = np.zeros(size, dtype=np.float64)
        self.var = np.ones(size, dtype=np.float64)
        self.frozen = False

    def update(self, x: np.ndarray) -> None:
        """Adds the rows of ``x`` (``[n, size]``) to the statistics (nothing when frozen or ``n == 0``)."""
        n = len(x)
        if self.frozen or n == 0:
            return
        if n == 1:  # one env: the same update without numpy's reductions (a third of a MuJoCo step's cost)
            delta, total = x[0] - self.mean, self.count + 1
            self.mean = self.mean + delta / total
            self.var = (self.var * self.count + delta * delta * (self.count / total)) / total
        else:
            mean, var = _mean_and_var(x)
            delta, total = mean - self.mean, self.count + n
            self.mean = self.mean + delta * n / total
            self.var = (self.var * self.count + var * n + delta * delta * (self.count * n / total)) / total
        self.count = total

    def update_scalar(self, x: float) -> None:
        """:meth:`update` with one row of a size-1 statistic, on Python floats: the same IEEE
        double operations in the same order (so the same bits), without a numpy call per
        operation on one-element arrays (about 1 us each here)."""
        if self.frozen:
            return
        mean, var, count = float(self.mean[0]), float(self.var[0]), self.count
        delta, total = x - mean, count + 1
        self.mean[0] = mean + delta / total
        self.var[0] = (var * count + delta * delta * (count / total)) / total
        self.count = total

    def freeze(self) -> None:
        self.frozen = True

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "count": torch.tensor(self.count, dtype=torch.float64),
            "mean": torch.from_numpy(self.mean.copy()),
            "var": torch.from_numpy(self.var.copy()),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if tuple(state["mean"].shape) != self.mean.shape:
            raise ValueError(
                f"the saved running statistics have shape {tuple(state['mean'].shape)}, this env's {self.mean.shape}"
            )
        self.count = float(state["count"])
        self.mean = state["mean"].cpu().numpy().astype(np.float64)
        self.var = state["var"].cpu().numpy().astype(np.float64)


class RunningObservationNorm(RunningMeanStd):
    """``(obs - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]`` when ``clip`` is given.

    Args:
        size: the observation's length.
        eps: added to the variance (gymnasium's and stable-baselines3's 1e-8).
        clip: bound on the normalized values (CleanRL, Tianshou and stable-baselines3 use 10), or ``None``.
    """

    in_keys = ["observation"]
    """The key it normalizes (what :func:`pgtorchrl.envs.gym.observation_transforms` checks)."""

    def __init__(self, size: int, eps: float = 1e-8, clip: float | None = None):
        super().__init__(size)
        self.eps, self.clip = eps, clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _clipped((x - self.mean) / np.sqrt(self.var + self.eps), self.clip)

    def to_observation_norm(self):
        """The current statistics as frozen TorchRL transforms on ``observation``:
        ``ObservationNorm`` (``standard_normal``), then ``ClipTransform`` when clipping."""
        from torchrl.envs import ClipTransform, Compose, ObservationNorm

        loc = torch.tensor(self.mean, dtype=torch.float32)
        scale = torch.tensor(np.sqrt(self.var + self.eps), dtype=torch.float32)
        parts = [ObservationNorm(loc=loc, scale=scale, in_keys=list(self.in_keys), standard_normal=True)]
        if self.clip is not None:
            parts.append(ClipTransform(in_keys=list(self.in_keys), low=-self.clip, high=self.clip))
        return Compose(*parts)


class RunningRewardScale:
    """gymnasium's ``NormalizeReward`` for ``num_envs`` envs: each env's discounted return
    ``G <- gamma * G * (1 - terminated) + r`` feeds one :class:`RunningMeanStd`, and the learner's
    reward is ``r / sqrt(var + eps)``, clipped to ``[-clip, clip]`` when given (CleanRL: 10).
    The task's own return (``episode_reward``, ``eval/``) is left as it is.
    """

    def __init__(self, num_envs: int, gamma: float = 0.99, eps: float = 1e-8, clip: float | None = None):
        self.gamma, self.eps, self.clip = gamma, eps, clip
        self.stats = RunningMeanStd(1)
        self.returns = np.zeros((num_envs, 1), dtype=np.float64)

    def __call__(
        self, reward: np.ndarray, terminated: np.ndarray, rows: np.ndarray | list[int] | None = None
    ) -> np.ndarray:
        """Scales the rewards of the envs ``rows`` just stepped (``[num_envs, 1]`` arrays; the other
        rows are 0), of every env when ``rows`` is ``None``."""
        if len(self.returns) == 1 and (rows is None or len(rows) == 1):
            return self._one_env(reward, terminated)
        return self._rows(reward, terminated, rows)

    def _rows(self, reward: np.ndarray, terminated: np.ndarray, rows: np.ndarray | list[int] | None) -> np.ndarray:
        """:meth:`__call__` on the arrays (the plain path)."""
        if rows is None or len(rows) == len(self.returns):
            rows = slice(None)  # type: ignore[assignment]  # all of them: views, not copies
        self.returns[rows] = self.returns[rows] * self.gamma * (1 - terminated[rows]) + reward[rows]
        self.stats.update(self.returns[rows])
        return _clipped(reward / np.sqrt(self.stats.var + self.eps), self.clip)

    def _one_env(self, reward: np.ndarray, terminated: np.ndarray) -> np.ndarray:
        """:meth:`__call__` for one env stepped, on Python floats: the same IEEE double operations
        in the same order as :meth:`_rows` (so the same bits: ``tests/test_normalization.py``)."""
        g = float(self.returns[0, 0]) * self.gamma * (1 - int(terminated[0, 0])) + float(reward[0, 0])
        self.returns[0, 0] = g
        self.stats.update_scalar(g)
        scaled = float(reward[0, 0]) / math.sqrt(float(self.stats.var[0]) + self.eps)
        if self.clip is not None:
            scaled = min(max(scaled, -self.clip), self.clip)  # np.minimum(np.maximum(...)), NaN kept
        return np.array([[scaled]], dtype=np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.stats.state_dict(), "returns": torch.from_numpy(self.returns.copy())}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stats.load_state_dict(state)
        self.returns[...] = state["returns"].numpy()
