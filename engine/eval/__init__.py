"""Evaluation: metrics identical to the official FreiHAND / HO3D code, and benchmarks."""
