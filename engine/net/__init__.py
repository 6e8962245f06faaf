"""The DaHyF network: backbones, direction maps, SimCC head, positional encoding, regressor, camera, confidence.

``from dahyf.net import DaHyF, DaHyFConfig`` is lazy: importing the package does not import torch.
"""
from __future__ import annotations

_LAZY = {
    "DaHyF": ("dahyf.net.dahyf_net", "DaHyF"),
    "DaHyFConfig": ("dahyf.net.dahyf_net", "DaHyFConfig"),
    "DaHyFEstimator": ("dahyf.net.dahyf_net", "DaHyFEstimator"),
}

from .._lazy import lazy_getattr  # noqa: E402

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
