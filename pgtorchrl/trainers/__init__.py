"""The training loop, per-step (boxed) updates, evaluation and checkpoints."""
