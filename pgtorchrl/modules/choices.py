"""The choices the model factories take, written once and torch-free: the spec validates
``activation:`` and ``distribution:`` against these before torch is imported, and
:mod:`pgtorchrl.modules.models` builds from them."""

from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

__all__ = ["ACTIVATION_CLASSES", "Activation", "Distribution", "DISTRIBUTIONS"]

#: ``activation:`` name -> its ``torch.nn`` class name.
ACTIVATION_CLASSES = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU"}
if TYPE_CHECKING:  # the Literal is built from the table above: to a type checker, a name
    Activation: TypeAlias = str
else:
    Activation = Literal[tuple(ACTIVATION_CLASSES)]
Distribution = Literal["auto", "categorical", "bernoulli", "normal", "tanh_normal"]
"""``auto`` picks from the action spec: categorical for Discrete and MultiDiscrete actions
(independent per component), bernoulli for MultiBinary, normal for Box."""
DISTRIBUTIONS = get_args(Distribution)
