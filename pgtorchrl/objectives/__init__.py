"""Losses (pgtorchrl's REINFORCE), policy optimizers (natural gradient, TRPO), the short corridor's
closed forms, and the spec's catalog of advantages, losses and optimizers."""
