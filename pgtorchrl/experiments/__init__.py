"""Many runs and trained runs, above the trainer: sweeps, Optuna studies, local worker pools and
Ray pools, and loading a trained run back (its actor, critic, spec and checkpoints)."""
