"""Losses (pgtorchrl's REINFORCE) and policy optimizers (natural gradient, TRPO)."""
