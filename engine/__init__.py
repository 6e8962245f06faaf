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

#: name -> (module, attribute); the hand layer's names through dahyf.hand, which says where each lives.
_LAZY = {
    **{name: ("dahyf.hand", name) for name in
       ("load_hand_model", "HandModel", "HandOutput", "ModelFileError", "mirror_pose", "mirror_points")},
    "DaHyFUserError": ("dahyf.errors", "DaHyFUserError"),
    "load_engine": ("dahyf.capture.engine", "load_engine"),
    "Engine": ("dahyf.capture.engine", "Engine"),
    "Take": ("dahyf.capture.take", "Take"),
    "CaptureError": ("dahyf.capture.errors", "CaptureError"),
}

__all__ = sorted(_LAZY) + ["__version__"]

from ._lazy import lazy_getattr  # noqa: E402

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
