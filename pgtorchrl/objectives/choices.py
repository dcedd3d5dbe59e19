"""Choices the losses take, written once and torch-free (the spec validates against them
before torch is imported; :mod:`pgtorchrl.objectives.reinforce` checks its arguments with them)."""

from typing import Literal, get_args

__all__ = ["CriticLossType", "CRITIC_LOSS_TYPES"]

CriticLossType = Literal["l2", "l1", "smooth_l1"]
"""The critic's regression distance (TorchRL's ``distance_loss`` names)."""
CRITIC_LOSS_TYPES = get_args(CriticLossType)
