"""Gradient-descent experiments (docs/experiments.md). Needs PyTorch: ``pip install -e ".[train]"``."""
