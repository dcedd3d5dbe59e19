"""Environments written in torch: CartPole-v1 and Sutton & Barto's short corridor."""
