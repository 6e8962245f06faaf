"""MANO hand layer: tables, kinematics, model loading (real MANO and the open hand model), mirroring.

Attributes are imported on first use, so ``import dahyf.hand.tables`` stays light.
"""
from __future__ import annotations

_LAZY = {
    "HandModel": ("dahyf.hand.model", "HandModel"),
    "HandOutput": ("dahyf.hand.model", "HandOutput"),
    "KeypointLayer": ("dahyf.hand.model", "KeypointLayer"),
    "load_hand_model": ("dahyf.hand.model", "load_hand_model"),
    "ModelFileError": ("dahyf.hand.mano_io", "ModelFileError"),
    "mirror_pose": ("dahyf.hand.mirror", "mirror_pose"),
    "mirror_points": ("dahyf.hand.mirror", "mirror_points"),
}

__all__ = sorted(_LAZY)

from .._lazy import lazy_getattr  # noqa: E402

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
