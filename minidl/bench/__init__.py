"""Benchmarks that print ratios against PyTorch measured in the same run."""
