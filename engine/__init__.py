"""DaHyF: hand motion capture from video (MANO hand poses), usable without Blender.

Public API::

    import dahyf
    hand = dahyf.load_hand_model("open", side="right")   # or a folder with MANO_*.pkl
    out = hand(pose, betas, transl)                        # vertices, joints (16), keypoints (21)
    engine = dahyf.load_engine()                           # the bundled default engine
    take = engine.capture("video.mp4")                     # a Take
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_hand_model": ("dahyf.hand.model", "load_hand_model"),
    "HandModel": ("dahyf.hand.model", "HandModel"),
    "HandOutput": ("dahyf.hand.model", "HandOutput"),
    "ModelFileError": ("dahyf.hand.mano_io", "ModelFileError"),
    "mirror_pose": ("dahyf.hand.mirror", "mirror_pose"),
    "mirror_points": ("dahyf.hand.mirror", "mirror_points"),
    "DaHyFUserError": ("dahyf.errors", "DaHyFUserError"),
    "load_engine": ("dahyf.capture.engine", "load_engine"),
    "Engine": ("dahyf.capture.engine", "Engine"),
    "Take": ("dahyf.capture.take", "Take"),
    "CaptureError": ("dahyf.capture.errors", "CaptureError"),
}

__all__ = sorted(_LAZY) + ["__version__"]

from ._lazy import lazy_getattr  # noqa: E402

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
