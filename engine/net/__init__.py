"""The DaHyF network: backbones, direction maps, SimCC head, positional encoding, regressor, camera, confidence.

``from dahyf.net import DaHyF, DaHyFConfig`` is lazy: importing the package does not import torch.
"""
from __future__ import annotations

_LAZY = {
    "DaHyF": ("dahyf.net.dahyf_net", "DaHyF"),
    "DaHyFConfig": ("dahyf.net.dahyf_net", "DaHyFConfig"),
    "DaHyFEstimator": ("dahyf.net.dahyf_net", "DaHyFEstimator"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dahyf.net' has no attribute {name!r}")
