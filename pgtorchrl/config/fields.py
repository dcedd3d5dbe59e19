"""Spec field types shared by several components' catalogs (torch-free): a component's own
field types stay beside its factory."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveInt

__all__ = ["Keys", "HiddenSizes"]

Keys = Annotated[list[str], Field(min_length=1, max_length=64)]
"""TensorDict keys a module reads (``in_keys``)."""
HiddenSizes = Annotated[list[PositiveInt], Field(max_length=16)]
"""An MLP's hidden layer widths."""
