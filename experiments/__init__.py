"""Gradient-descent experiments (THEORY.md part E). Needs PyTorch: ``pip install -e ".[train]"``."""
