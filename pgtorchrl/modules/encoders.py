"""Observation encoders chosen from the env's spec: what turns each observation key into a flat
float feature vector before an actor's or critic's MLP head.

One encoder per key, by the key's spec (its shape without the env's batch dims):

- a flat float vector ``[n]`` (a ``Box``): used as it is (no module: the MLP of flat-vector tasks
  is unchanged);
- a discrete observation: ``OneHot`` (TorchRL's encoding of a gymnasium ``Discrete``) and
  ``Binary`` / ``MultiOneHot`` are cast to float; a ``Categorical`` index is one-hot encoded, a
  ``MultiCategorical`` one one-hot per component (:class:`OneHotEncoder`);
- an image (rank 3, channels first ``[C, H, W]`` or last ``[H, W, C]``, uint8 or float): a
  :class:`ConvEncoder`. By default the Nature-CNN of Mnih et al. (2015) for frames of 36x36 and
  more (three convolutions 32x8/4, 64x4/2, 64x3/1, then 512 units), and MinAtar's network for
  smaller ones (Young & Tian 2019: one 16x3/1 convolution, then 128 units); uint8 frames stay uint8
  in the batch and are scaled to [0, 1] inside the module (a rollout of frames costs a quarter of
  its float32 memory).

:func:`make_encoder` builds the encoders of several keys (a ``Dict`` / ``Tuple`` / nested
``Composite`` observation is one key per leaf) as one module, :class:`KeyEncoders`, whose output is
their features concatenated in ``in_keys`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from tensordict.utils import NestedKey
from torch import nn
from torchrl.data import Binary, Categorical, Composite, MultiCategorical, OneHot, TensorSpec

__all__ = ["ConvSettings", "NATURE_CNN", "MINATAR_CNN", "FloatEncoder", "OneHotEncoder", "ConvEncoder", "Encoded"]
__all__ += ["KeyEncoders"]
__all__ += ["encoder_for", "make_encoder", "image_layout"]


@dataclass(frozen=True)
class ConvSettings:
    """A convolution stack (each layer ``channels[i]`` filters of ``kernel_sizes[i]`` with
    ``strides[i]``, ReLU), flattened into ``out_features`` units (Linear, ReLU)."""

    channels: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    strides: tuple[int, ...]
    out_features: int

    def __post_init__(self) -> None:
        if not len(self.channels) == len(self.kernel_sizes) == len(self.strides) or not self.channels:
            raise ValueError(
                f"channels {list(self.channels)}, kernel_sizes {list(self.kernel_sizes)} and strides "
                f"{list(self.strides)} must be lists of one length (one entry per convolution)"
            )


NATURE_CNN = ConvSettings((32, 64, 64), (8, 4, 3), (4, 2, 1), 512)
"""Mnih et al. (2015), the network of CleanRL's ``ppo_atari.py``, for 84x84 frames."""
MINATAR_CNN = ConvSettings((16,), (3,), (1,), 128)
"""Young & Tian (2019), MinAtar's 10x10 frames."""
_NATURE_MIN_SIZE = 36  # the smallest frame the Nature-CNN's strides leave a 1x1 map of


class FloatEncoder(nn.Module):
    """Discrete observations that are already one-hot or binary (``OneHot``, ``MultiOneHot``,
    ``Binary``), as float features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.get_default_dtype())


class OneHotEncoder(nn.Module):
    """Category indices as one-hot features: one component of ``n`` classes (``nvec=[n]``; an
    index of shape ``[*batch]`` or ``[*batch, 1]``) or several (``[*batch, len(nvec)]``, one-hot
    each, concatenated).

    >>> OneHotEncoder([3])(torch.tensor([2, 0]))
    tensor([[0., 0., 1.],
            [1., 0., 0.]])
    >>> OneHotEncoder([2, 3])(torch.tensor([[1, 2]]))
    tensor([[0., 1., 0., 0., 1.]])
    """

    def __init__(self, nvec: Sequence[int]):
        super().__init__()
        self.nvec = [int(n) for n in nvec]

    @property
    def out_features(self) -> int:
        return sum(self.nvec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.nvec) == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x.unsqueeze(-1)  # a bare index per sample
        parts = [nn.functional.one_hot(x[..., i].long(), n) for i, n in enumerate(self.nvec)]
        return torch.cat(parts, -1).to(torch.get_default_dtype())


def image_layout(shape: Sequence[int]) -> bool:
    """Whether an image of ``shape`` (rank 3) is channels last ``[H, W, C]``: its last dim is the
    smallest (MinAtar's ``[10, 10, C]``, gymnasium's ``[H, W, 3]``); otherwise channels first
    (``[C, H, W]``, TorchRL's ``ToTensorImage`` and frame stacks ``[4, 84, 84]``)."""
    return shape[-1] < shape[0]


class ConvEncoder(nn.Module):
    """An image encoder: convolutions (ReLU) over ``[*batch, C, H, W]`` (or ``[*batch, H, W, C]``
    with ``channels_last``), flattened into ``settings.out_features`` units (Linear, ReLU). uint8
    frames are scaled by ``1 / 255`` inside and bool ones (MinAtar's) cast, so a batch keeps them
    as they came.

    >>> enc = ConvEncoder((10, 10, 4), MINATAR_CNN, channels_last=True)
    >>> enc(torch.zeros(2, 10, 10, 4, dtype=torch.uint8)).shape
    torch.Size([2, 128])
    """

    def __init__(self, shape: Sequence[int], settings: ConvSettings, channels_last: bool):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3:
            raise ValueError(f"an image observation has 3 dims ([C, H, W] or [H, W, C]), got shape {shape}")
        self.channels_last = channels_last
        self.image_shape = (shape[2], shape[0], shape[1]) if channels_last else shape  # [C, H, W]
        layers: list[nn.Module] = []
        in_channels = self.image_shape[0]
        for channels, kernel, stride in zip(settings.channels, settings.kernel_sizes, settings.strides):
            layers += [nn.Conv2d(in_channels, channels, kernel, stride), nn.ReLU()]
            in_channels = channels
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            try:
                n_flat = self.convs(torch.zeros(1, *self.image_shape)).shape[-1]
            except RuntimeError as err:
                kernels, strides = list(settings.kernel_sizes), list(settings.strides)
                raise ValueError(
                    f"the convolutions (kernel sizes {kernels}, strides {strides}) do not fit an image of "
                    f"{self.image_shape[1]}x{self.image_shape[2]}: use smaller kernels or strides"
                ) from err
        self.head = nn.Sequential(nn.Linear(n_flat, settings.out_features), nn.ReLU())
        self.out_features = settings.out_features

    INFERENCE_CHUNK = 256
    """Frames encoded at a time without gradients (the critic's values over a whole batch,
    evaluation statistics): 1024 Atari frames at once are 115 MB of float32 input and as much
    again of activations; chunks bound that, with the same values up to the convolution kernels'
    rounding (``tests/test_encoders.py``). With gradients (the loss) the batch is encoded whole."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.reshape(-1, *x.shape[-3:])
        if not torch.is_grad_enabled() and frames.shape[0] > self.INFERENCE_CHUNK:
            parts = [self._encode(chunk) for chunk in frames.split(self.INFERENCE_CHUNK)]
            return torch.cat(parts).reshape(*x.shape[:-3], self.out_features)
        return self._encode(frames).reshape(*x.shape[:-3], self.out_features)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, C, H, W]`` (or ``[n, H, W, C]``) frames -> ``[n, out_features]``."""
        if x.dtype == torch.uint8:  # pixel intensities
            x = x.to(torch.get_default_dtype()).div_(255.0)  # in place: a batch of frames is large
        elif not x.is_floating_point():  # MinAtar's bool channels
            x = x.to(torch.get_default_dtype())
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.head(self.convs(x))


class Encoded(nn.Module):
    """``head(encoder(*inputs))``: an MLP head over encoded observations (an actor's or critic's
    network when some input is not a flat float vector)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(*inputs))


class KeyEncoders(nn.Module):
    """One encoder per input (``None``: used as it is), their outputs concatenated on the last dim:
    the module an actor's or critic's MLP head reads, called with the ``in_keys``' tensors in order."""

    def __init__(self, encoders: Sequence[nn.Module | None], out_features: int):
        super().__init__()
        self.encoders = nn.ModuleList(nn.Identity() if e is None else e for e in encoders)
        self.out_features = out_features

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.encoders):
            raise ValueError(f"{len(self.encoders)} inputs expected (the in_keys), got {len(inputs)}")
        features = [encoder(x) for encoder, x in zip(self.encoders, inputs)]
        return features[0] if len(features) == 1 else torch.cat(features, -1)


def encoder_for(
    key: NestedKey, spec: TensorSpec, batch_dims: int, conv: ConvSettings | None = None
) -> tuple[nn.Module | None, int]:
    """The encoder of one observation key (``None`` for a flat float vector) and its number of
    features; ``spec`` is the key's spec, whose first ``batch_dims`` dims are the env's."""
    shape = tuple(spec.shape[batch_dims:])
    if isinstance(spec, Composite):
        leaves = ", ".join(repr((key, *k) if isinstance(k, tuple) else (key, k)) for k in spec.keys(True, True))
        raise ValueError(
            f"observation key {key!r} has a Composite of several entries: name its leaves in in_keys ({leaves})"
        )
    if len(shape) == 3:
        channels_last = image_layout(shape)
        frame = shape[:2] if channels_last else shape[1:]
        settings = conv or (NATURE_CNN if min(frame) >= _NATURE_MIN_SIZE else MINATAR_CNN)
        conv_encoder = ConvEncoder(shape, settings, channels_last)
        return conv_encoder, conv_encoder.out_features
    if isinstance(spec, (OneHot, Binary)):  # already 0/1 features (MultiOneHot is a OneHot)
        return FloatEncoder(), int(shape[-1]) if shape else 1
    if isinstance(spec, MultiCategorical):
        one_hot = OneHotEncoder(spec.nvec.reshape(-1, shape[-1])[0].tolist())  # one env's components
        return one_hot, one_hot.out_features
    if isinstance(spec, Categorical):
        if shape not in ((), (1,)):
            raise ValueError(f"observation key {key!r}: a Categorical observation of shape {shape} is not supported")
        return OneHotEncoder([spec.space.n]), int(spec.space.n)
    if len(shape) == 1 and spec.dtype.is_floating_point:
        return None, int(shape[0])
    if len(shape) == 1:
        return FloatEncoder(), int(shape[0])
    raise ValueError(
        f"observation key {key!r} has shape {shape}: the models take flat vectors, discrete values and images "
        f"(rank 3); flatten it (torchrl.envs.FlattenObservation) or write your own actor"
    )


def make_encoder(
    observation_spec: TensorSpec, in_keys: Sequence[NestedKey], conv: ConvSettings | None = None
) -> tuple[KeyEncoders | None, int]:
    """The encoders of ``in_keys`` as one :class:`KeyEncoders` and its number of features, or
    ``None`` (and the summed size) when every key is a flat float vector (the MLP reads them as
    they are, TorchRL's ``MLP`` concatenating them).

    ``observation_spec`` is an env's whole ``observation_spec`` (a ``Composite`` read at
    ``in_keys``, its batch dims known) or, with one key, that key's own spec (``[n]`` or
    ``[envs, n]``; a rank-3 spec is one image).

    >>> from torchrl.data import Composite, OneHot, Unbounded
    >>> enc, n = make_encoder(Composite(pos=Unbounded(2), cell=OneHot(16)), ["pos", "cell"])
    >>> n, enc(torch.zeros(2), torch.nn.functional.one_hot(torch.tensor(3), 16)).shape
    (18, torch.Size([18]))
    """
    in_keys = list(in_keys)
    if not in_keys:
        raise ValueError("in_keys is empty: name the observation key(s) the network reads, e.g. ['observation']")
    encoders, size = [], 0
    for key in in_keys:
        if isinstance(observation_spec, Composite):
            if key not in observation_spec.keys(True):
                known = ", ".join(map(str, observation_spec.keys(True, True)))
                raise ValueError(f"observation key {key!r} is not in the env's observation_spec (it has: {known})")
            spec, batch_dims = observation_spec[key], len(observation_spec.shape)
        elif len(in_keys) > 1:
            raise ValueError(
                f"in_keys={in_keys} name several keys: pass the env's whole observation_spec (a Composite)"
            )
        else:  # one key's own spec: a batched env's [envs, n] or [envs, C, H, W]
            spec, batch_dims = observation_spec, 1 if len(observation_spec.shape) in (2, 4) else 0
        encoder, n = encoder_for(key, spec, batch_dims, conv)
        encoders.append(encoder)
        size += n
    if all(e is None for e in encoders):
        return None, size
    return KeyEncoders(encoders, size), size
