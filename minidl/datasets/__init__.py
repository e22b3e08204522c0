"""Datasets: toy 2-D problems for quick checks (``toy``)."""
from .toy import two_spirals, xor

__all__ = ["two_spirals", "xor"]
