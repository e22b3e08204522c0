"""Experiments: training runs over a grid of configurations, with plots."""
